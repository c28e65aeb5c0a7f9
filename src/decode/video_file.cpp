// Reading the sampled frames of a video file: opening and probing it, then reading on or seeking.
//
// Video files are read sequentially: grab() every frame up to the last one needed and retrieve()
// (colour-convert) only the sampled ones. That is always exact but decodes up to the last sampled
// frame (and, for uniform sampling, on to the end to count). FFmpeg seeks by timestamp, so
// "frame k" after a seek is the decoder's k-th output frame only when timestamp and position agree
// frame for frame; AVI files with B-frames report timestamps out of order (PREPROCESSING.md), and
// variable-rate or gappy files break the agreement anywhere.
// So seeking is an optimisation for what we can check: an MP4/MOV or Matroska/WebM whose packets
// (listed without decoding, see indexed_reader.hpp) all sit on a constant-rate grid give the true
// frame count and the key frames; each target is decoded from the key frame at or before it,
// every decoded frame's timestamp is checked against its position, and any inconsistency
// discards the attempt and falls back to the sequential read.
#include <spdlog/spdlog.h>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <system_error>

#include "decode/decode.hpp"
#include "decode/detail.hpp"
#include "indexed_reader.hpp"
#include "stam/error.hpp"
#include "util/files.hpp"
#include "util/text.hpp"

namespace fs = std::filesystem;

namespace stam {
namespace {

constexpr double kDefaultDecodeTimeoutS = 60.0;

// OpenCV's grab() fails alike at the end of the file and on a packet the decoder refuses (a
// damaged stretch: a broken NAL unit size, say). The refused packet is used up, so the next
// grab() goes on after it, as ffmpeg and ffprobe do; this many failures in a row are the end.
constexpr int kFailedGrabsAtEnd = 64;

}  // namespace

Watchdog::Watchdog(double limit_s, Clock clock)
    : limit_s_(limit_s), clock_(std::move(clock)), last_(clock_()) {}

void Watchdog::progress() {
  last_ = clock_();
}

bool Watchdog::expired() const {
  return clock_() - last_ >= limit_s_;
}

double Watchdog::monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double decode_timeout_s() {
  const char* env = std::getenv("STAM_DECODE_TIMEOUT");
  if (env == nullptr || *env == '\0') return kDefaultDecodeTimeoutS;
  char* end = nullptr;
  const double s = std::strtod(env, &end);
  if (*end != '\0' || !std::isfinite(s) || !(s > 0)) {
    throw UsageError("STAM_DECODE_TIMEOUT must be a number of seconds > 0, got '" +
                     std::string(env) + "'");
  }
  return s;
}

[[noreturn]] void throw_stalled(const std::string& path, const Watchdog& watchdog) {
  std::ostringstream limit;
  limit << watchdog.limit_s();
  throw InputError(quoted_path(path) + ": decoding made no progress for " + limit.str() +
                   " s and was stopped (the limit is $STAM_DECODE_TIMEOUT seconds, default 60)");
}

cv::VideoCapture open_video(const std::string& path, Watchdog& watchdog) {
  const int limit_ms = static_cast<int>(std::clamp(watchdog.limit_s() * 1000.0, 1.0, 1e9));
  const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, limit_ms,
                                   cv::CAP_PROP_READ_TIMEOUT_MSEC, limit_ms};
  cv::VideoCapture cap;
  watchdog.progress();
  try {
    cap.open(path, cv::CAP_FFMPEG, params);
  } catch (const cv::Exception& e) {
    throw InputError(quoted_path(path) + ": cannot open as a video: " + e.what());
  }
  if (!cap.isOpened()) {
    if (watchdog.expired()) throw_stalled(path, watchdog);
    if (has_no_video_stream(path))
      throw InputError(quoted_path(path) + ": has no video stream (an audio file?)");
    throw InputError(quoted_path(path) + ": not a video file FFmpeg can open");
  }
  watchdog.progress();
  // Frames come out upright as a player shows them (rotation metadata of phone videos).
  cap.set(cv::CAP_PROP_ORIENTATION_AUTO, 1);
  return cap;
}

int64_t header_frame_count(cv::VideoCapture& cap) {
  const double n = cap.get(cv::CAP_PROP_FRAME_COUNT);
  if (!std::isfinite(n) || n < 1 || n > 1e12) return 0;
  return static_cast<int64_t>(std::llround(n));
}

double stream_fps(cv::VideoCapture& cap) {
  const double fps = cap.get(cv::CAP_PROP_FPS);
  return std::isfinite(fps) && fps > 0 ? fps : 0.0;
}

bool grab_past_damage(cv::VideoCapture& cap, const Watchdog& watchdog, int64_t* lost) {
  for (int failed = 0; failed < kFailedGrabsAtEnd; ++failed) {
    if (cap.grab()) {
      *lost += failed;
      return true;
    }
    if (watchdog.expired()) return false;
  }
  return false;
}

std::string lost_packets_warning(int64_t lost) {
  return std::to_string(lost) +
         " video packet(s) could not be decoded and were passed over (the file is damaged): the "
         "frames after them are counted without them";
}

std::string header_count_warning(int64_t header, int64_t decoded) {
  const std::string said = "the header says " + std::to_string(header) + " frames but ";
  if (decoded < header) {
    return said + "only " + std::to_string(decoded) +
           " could be decoded (the file may be cut short or damaged, or the count includes "
           "frames an edit list hides, or was estimated from the duration)";
  }
  return said + "the file has " + std::to_string(decoded);
}

std::string variable_rate_warning() {
  return "the frame rate varies (frame timestamps are unevenly spaced): frames were sampled by "
         "position, not by time";
}

std::string rotation_warning(int angle) {
  if (angle == 90 || angle == 180 || angle == 270) {
    return "frames were rotated by " + std::to_string(angle) +
           " degrees as the file's rotation metadata asks";
  }
  // OpenCV turns frames by quarter turns only.
  return "the file's rotation metadata asks for " + std::to_string(angle) +
         " degrees, which is not a quarter turn: frames were left as decoded";
}

namespace {

// Result of one sequential pass over a video.
struct PassResult {
  std::map<int64_t, cv::Mat> frames;  // position -> RGB image, for the wanted positions decoded
  int64_t grabbed = 0;                // frames the decoder produced during the pass
  int64_t lost = 0;                   // packets the decoder refused (passed over)
  bool reached_end = false;           // no more frames
  std::vector<int64_t> failed;        // wanted positions whose retrieve() failed
};

// Grabs frames from the start, retrieving the `wanted` positions (sorted, unique). Stops after
// the last wanted one, or goes on to the end of the file when `count_to_end` is set. Throws
// InputError when a grab() fails because the watchdog's time ran out.
PassResult sequential_pass(const std::string& path, cv::VideoCapture& cap,
                           const std::vector<int64_t>& wanted, bool count_to_end,
                           Watchdog& watchdog, FrameKeeper& keep) {
  PassResult r;
  size_t next = 0;
  watchdog.progress();
  while (next < wanted.size() || count_to_end) {
    if (!grab_past_damage(cap, watchdog, &r.lost)) {
      if (watchdog.expired()) throw_stalled(path, watchdog);
      r.reached_end = true;
      break;
    }
    watchdog.progress();
    const int64_t pos = r.grabbed++;
    if (next < wanted.size() && wanted[next] == pos) {
      ++next;
      cv::Mat bgr;
      if (cap.retrieve(bgr) && !bgr.empty() && bgr.type() == CV_8UC3) {
        r.frames[pos] = keep(bgr);
      } else {
        r.failed.push_back(pos);
      }
    }
  }
  return r;
}

bool all_present(const std::vector<int64_t>& wanted, const std::map<int64_t, cv::Mat>& frames) {
  return std::all_of(wanted.begin(), wanted.end(), [&](int64_t i) { return frames.count(i) != 0; });
}

// ---- reading through the container's index ----

// Turns a frame upright as OpenCV's CAP_PROP_ORIENTATION_AUTO does for `angle`
// (CAP_PROP_ORIENTATION_META: 0, 90, 180 or 270).
cv::Mat rotated(cv::Mat img, int angle) {
  if (angle == 90) cv::rotate(img, img, cv::ROTATE_90_CLOCKWISE);
  if (angle == 180) cv::rotate(img, img, cv::ROTATE_180);
  if (angle == 270) cv::rotate(img, img, cv::ROTATE_90_COUNTERCLOCKWISE);
  return img;
}

// Reads the chosen frames (exact) or the key frames at or before them (keyframe) through
// IndexedReader, which counts the frames from the container's packets. nullopt when the file
// does not qualify or any check fails (`*refused` says why); the caller then reads
// sequentially. `*variable` as IndexedReader::open sets it.
std::optional<VideoFrames> read_video_indexed(const std::string& path, cv::VideoCapture& cap,
                                              const Chooser& choose, Seek seek, int angle,
                                              Watchdog& watchdog, bool* variable,
                                              std::string* refused, FrameKeeper& keep) {
  const auto reader = IndexedReader::open(path, watchdog, variable, refused);
  if (!reader) return std::nullopt;
  *refused = "a frame failed to decode or was not where its timestamp puts it (damaged?)";
  VideoFrames out;
  out.fps = stream_fps(cap);
  out.frame_count = reader->frame_count();
  const Selection sel = choose(out.frame_count, out.fps);
  std::vector<int64_t> indices = sel.indices;
  if (seek == Seek::kKeyframe) {
    for (int64_t& i : indices) i = reader->key_frame_at_or_before(i);
    const size_t distinct = sorted_unique(indices).size();
    if (2 * distinct < indices.size())
      out.warnings.push_back(
          "--seek keyframe: the " + std::to_string(indices.size()) +
          " sampled positions fell on only " + std::to_string(distinct) +
          " distinct key frame(s), so the model saw each several times (--seek exact reads the "
          "sampled frames themselves)");
  }
  const bool check_end = seek == Seek::kExact && sel.depends_on_end;
  if (seek == Seek::kExact) {
    std::vector<int64_t> reads = indices;
    if (check_end) reads.push_back(out.frame_count - 1);
    reader->must_decode(reads);
  }
  std::map<int64_t, cv::Mat> frames;
  for (int64_t w : sorted_unique(indices)) {
    cv::Mat bgr;
    const bool ok = seek == Seek::kKeyframe ? reader->read_key_frame(w, bgr) : reader->read(w, bgr);
    if (!ok) return std::nullopt;
    frames[w] = keep(rotated(bgr, angle));
  }
  // When the choice depends on the count, decode the last frame too: a file cut or damaged at
  // its end fails here rather than yielding a count a sequential read would not give. (Keyframe
  // mode trusts the packets, to decode nothing but key frames.)
  if (check_end && frames.count(out.frame_count - 1) == 0) {
    cv::Mat last;
    if (!reader->read(out.frame_count - 1, last)) return std::nullopt;
  }
  refused->clear();
  out.seeked = reader->seeked();
  spdlog::debug("{}: {} frames decoded through the container's index", path, reader->decoded());
  fill_images(out, indices, frames, keep);
  return out;
}

// ---- sequential reading ----

VideoFrames read_video_sequential(const std::string& path, cv::VideoCapture& cap,
                                  const Chooser& choose, Watchdog& watchdog, FrameKeeper& keep) {
  VideoFrames out;
  out.fps = stream_fps(cap);

  int64_t n = header_frame_count(cap);
  bool count_known = false;  // n was counted by decoding, not read from the header
  if (n == 0) {
    // No usable header count (some AVI/MKV/WebM files): decode once to count.
    n = sequential_pass(path, cap, {}, true, watchdog, keep).grabbed;
    if (n == 0) throw InputError(quoted_path(path) + ": no decodable video frames");
    count_known = true;
    cap = open_video(path, watchdog);
  }

  std::map<int64_t, cv::Mat> frames;
  Selection sel;
  int64_t lost = 0;  // packets passed over in the last pass
  // At most two passes: the second one runs only when the header's count proved wrong.
  for (int pass = 0; pass < 2; ++pass) {
    sel = choose(n, out.fps);
    const std::vector<int64_t> wanted = sorted_unique(sel.indices);
    PassResult r =
        sequential_pass(path, cap, wanted, sel.depends_on_end && !count_known, watchdog, keep);
    frames.insert(r.frames.begin(), r.frames.end());
    lost = r.lost;
    const bool count_wrong = !count_known && r.reached_end && r.grabbed != n;
    if (count_wrong && pass == 0) {
      if (r.grabbed == 0) throw InputError(quoted_path(path) + ": no decodable video frames");
      out.warnings.push_back(header_count_warning(n, r.grabbed));
      n = r.grabbed;
      count_known = true;
      sel = choose(n, out.fps);
      if (all_present(sorted_unique(sel.indices), frames)) break;
      cap = open_video(path, watchdog);  // resample over the real count, reading from the start
      continue;
    }
    if (!r.failed.empty()) {
      out.warnings.push_back(std::to_string(r.failed.size()) +
                             " sampled frame(s) failed to decode");
    }
    if (r.reached_end && r.grabbed < n) {
      out.warnings.push_back("the file ended after " + std::to_string(r.grabbed) + " of " +
                             std::to_string(n) + " frames");
      n = r.grabbed;
    }
    break;
  }
  if (frames.empty()) throw InputError(quoted_path(path) + ": no decodable video frames");
  if (lost > 0) out.warnings.push_back(lost_packets_warning(lost));
  out.frame_count = std::max<int64_t>(n, 1);
  fill_images(out, sel.indices, frames, keep);
  return out;
}

}  // namespace

VideoFrames read_video(const std::string& path, const Chooser& choose, Seek seek,
                       FrameKeeper& keep) {
  check_readable_file(path);
  Watchdog watchdog(decode_timeout_s());
  cv::VideoCapture cap = open_video(path, watchdog);
  const int angle = static_cast<int>(cap.get(cv::CAP_PROP_ORIENTATION_META));
  bool variable = false;
  std::string refused;
  std::optional<VideoFrames> out =
      read_video_indexed(path, cap, choose, seek, angle, watchdog, &variable, &refused, keep);
  if (watchdog.expired()) throw_stalled(path, watchdog);
  if (!out) {
    spdlog::debug("{}: read sequentially: {}", path, refused);
    out = read_video_sequential(path, cap, choose, watchdog, keep);
    if (seek == Seek::kKeyframe) {
      out->warnings.push_back("no usable key-frame index (" + refused +
                              "): the exact sampled frames were read instead");
    }
  }
  if (variable) out->warnings.push_back(variable_rate_warning());
  if (angle != 0) out->warnings.push_back(rotation_warning(angle));
  return std::move(*out);
}

}  // namespace stam
