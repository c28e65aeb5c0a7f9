// Reading the sampled frames of a video file or a frames folder.
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
#include "decode/decode.hpp"

#include <spdlog/spdlog.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>

#include "indexed_reader.hpp"
#include "stam/error.hpp"
#include "util/text.hpp"

namespace fs = std::filesystem;

namespace stam {
namespace {

constexpr double kDefaultDecodeTimeoutS = 60.0;

// The frames to take once the frame count `n` is known.
struct Selection {
  std::vector<int64_t> indices;  // in sample order, all in [0, n)
  // True when the choice would change if the file had more frames than `n`: then the real count
  // must be confirmed by reading to the end.
  bool depends_on_end = false;
};
// Called with the frame count and the stream's frame rate.
using Chooser = std::function<Selection(int64_t n, double fps)>;

// A path in a message, as records write names (control characters and stray bytes as \xHH):
// a name with a newline or an escape sequence cannot break a log line or drive the terminal.
std::string quoted(const std::string& path) {
  return "'" + path_line(path) + "'";
}

cv::Mat bgr_to_rgb(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

// Turns each decoded BGR frame that is kept into what the caller stores: RGB, then the caller's
// transform, applied as the frame is decoded so no full-size frame waits for the others. Notes
// the decoded size first, and the time the transform takes.
class FrameKeeper {
 public:
  explicit FrameKeeper(const FrameTransform& transform) : transform_(transform) {}
  cv::Mat operator()(const cv::Mat& bgr) {
    if (size_.empty()) size_ = bgr.size();
    sizes_differ_ |= bgr.size() != size_;
    const cv::Mat rgb = bgr_to_rgb(bgr);
    if (!transform_) return rgb;
    const auto t0 = std::chrono::steady_clock::now();
    cv::Mat out = transform_(rgb);
    transform_ms_ +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return out;
  }
  // The decoded size of the first frame kept, and the transform's time, into `out`.
  void report(VideoFrames& out) const {
    out.width = size_.width;
    out.height = size_.height;
    out.transform_ms = transform_ms_;
  }
  bool sizes_differ() const { return sizes_differ_; }

 private:
  const FrameTransform& transform_;
  cv::Size size_;
  bool sizes_differ_ = false;
  double transform_ms_ = 0;
};

// Rejects what is not a readable, non-empty regular file, with a message naming the path.
// Non-regular files (FIFOs, devices) are refused because opening them can block forever.
void check_video_file(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw InputError(quoted(path) + ": no such file or directory");
  if (!fs::is_regular_file(st)) throw InputError(quoted(path) + ": not a regular file or folder");
  const auto size = fs::file_size(path, ec);
  if (ec) throw InputError(quoted(path) + ": cannot read file size: " + ec.message());
  if (size == 0) throw InputError(quoted(path) + ": file is empty");
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw InputError(quoted(path) + ": cannot open file for reading");
}

[[noreturn]] void throw_stalled(const std::string& path, const Watchdog& watchdog) {
  std::ostringstream limit;
  limit << watchdog.limit_s();
  throw InputError(quoted(path) + ": decoding made no progress for " + limit.str() +
                   " s and was stopped (the limit is $STAM_DECODE_TIMEOUT seconds, default 60)");
}

// OpenCV's FFmpeg backend stops opening after its open timeout and a grab() after its read
// timeout, both counted afresh for each call: set to the watchdog's limit, a stalled read ends
// with the watchdog expired, which tells it from the end of the file.
cv::VideoCapture open_video(const std::string& path, Watchdog& watchdog) {
  const int limit_ms = static_cast<int>(std::clamp(watchdog.limit_s() * 1000.0, 1.0, 1e9));
  const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, limit_ms,
                                   cv::CAP_PROP_READ_TIMEOUT_MSEC, limit_ms};
  cv::VideoCapture cap;
  watchdog.progress();
  try {
    cap.open(path, cv::CAP_FFMPEG, params);
  } catch (const cv::Exception& e) {
    throw InputError(quoted(path) + ": cannot open as a video: " + e.what());
  }
  if (!cap.isOpened()) {
    if (watchdog.expired()) throw_stalled(path, watchdog);
    if (has_no_video_stream(path))
      throw InputError(quoted(path) + ": has no video stream (an audio file?)");
    throw InputError(quoted(path) + ": not a video file FFmpeg can open");
  }
  watchdog.progress();
  // Frames come out upright as a player shows them (rotation metadata of phone videos).
  cap.set(cv::CAP_PROP_ORIENTATION_AUTO, 1);
  return cap;
}

// Frame count from the container header; 0 when unknown or nonsensical.
int64_t header_frame_count(cv::VideoCapture& cap) {
  const double n = cap.get(cv::CAP_PROP_FRAME_COUNT);
  if (!std::isfinite(n) || n < 1 || n > 1e12) return 0;
  return static_cast<int64_t>(std::llround(n));
}

// OpenCV's grab() fails alike at the end of the file and on a packet the decoder refuses (a
// damaged stretch: a broken NAL unit size, say). The refused packet is used up, so the next
// grab() goes on after it, as ffmpeg and ffprobe do; this many failures in a row are the end.
constexpr int kFailedGrabsAtEnd = 64;

// The next frame, passing over packets the decoder refuses; false at the end of the file or once
// the watchdog expired. Adds the packets passed over to `*lost`.
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

std::vector<int64_t> sorted_unique(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

bool all_present(const std::vector<int64_t>& wanted, const std::map<int64_t, cv::Mat>& frames) {
  return std::all_of(wanted.begin(), wanted.end(), [&](int64_t i) { return frames.count(i) != 0; });
}

// The decoded frame nearest to `pos` (preferring earlier ones), for positions that failed.
const cv::Mat& nearest_frame(const std::map<int64_t, cv::Mat>& frames, int64_t pos,
                             int64_t* taken) {
  auto it = frames.upper_bound(pos);
  if (it != frames.begin()) --it;
  *taken = it->first;
  return it->second;
}

void fill_images(VideoFrames& out, const std::vector<int64_t>& indices,
                 const std::map<int64_t, cv::Mat>& frames, const FrameKeeper& keep) {
  bool substituted = false;
  std::set<int64_t> used;
  for (int64_t idx : indices) {
    int64_t taken = idx;
    const cv::Mat& img = nearest_frame(frames, idx, &taken);
    substituted |= taken != idx;
    // Repeated positions get their own copy so callers may modify images independently.
    out.images.push_back(used.insert(taken).second ? img : img.clone());
    out.indices.push_back(taken);
  }
  if (substituted) {
    out.warnings.emplace_back(
        "some sampled frames could not be decoded: the nearest decoded frames were used instead");
  }
  keep.report(out);
}

double stream_fps(cv::VideoCapture& cap) {
  const double fps = cap.get(cv::CAP_PROP_FPS);
  return std::isfinite(fps) && fps > 0 ? fps : 0.0;
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

// A header count that proved wrong: too high means a cut or damaged file, frames an MP4 edit
// list leaves out (a stream-copied trim), or an estimate (duration x rate, MPEG-TS, Matroska);
// too low, an estimate fooled by a variable rate.
std::string header_count_warning(int64_t header, int64_t decoded) {
  const std::string said = "the header says " + std::to_string(header) + " frames but ";
  if (decoded < header) {
    return said + "only " + std::to_string(decoded) +
           " could be decoded (the file may be cut short or damaged, or the count includes "
           "frames an edit list hides, or was estimated from the duration)";
  }
  return said + "the file has " + std::to_string(decoded);
}

VideoFrames read_video_sequential(const std::string& path, cv::VideoCapture& cap,
                                  const Chooser& choose, Watchdog& watchdog, FrameKeeper& keep) {
  VideoFrames out;
  out.fps = stream_fps(cap);

  int64_t n = header_frame_count(cap);
  bool count_known = false;  // n was counted by decoding, not read from the header
  if (n == 0) {
    // No usable header count (some AVI/MKV/WebM files): decode once to count.
    n = sequential_pass(path, cap, {}, true, watchdog, keep).grabbed;
    if (n == 0) throw InputError(quoted(path) + ": no decodable video frames");
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
      if (r.grabbed == 0) throw InputError(quoted(path) + ": no decodable video frames");
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
  if (frames.empty()) throw InputError(quoted(path) + ": no decodable video frames");
  if (lost > 0) out.warnings.push_back(lost_packets_warning(lost));
  out.frame_count = std::max<int64_t>(n, 1);
  fill_images(out, sel.indices, frames, keep);
  return out;
}

std::string variable_rate_warning() {
  return "the frame rate varies (frame timestamps are unevenly spaced): frames were sampled by "
         "position, not by time";
}

std::string sizes_differ_warning() {
  return "images in the folder have different sizes";
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

VideoFrames read_video(const std::string& path, const Chooser& choose, Seek seek,
                       FrameKeeper& keep) {
  check_video_file(path);
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

// ---- frames folder ----

bool is_image_name(const fs::path& p) {
  static const std::set<std::string> kExts = {".jpg",  ".jpeg", ".png", ".bmp",
                                              ".webp", ".tif",  ".tiff"};
  return kExts.count(ascii_lower(p.extension().string())) != 0;
}

std::vector<fs::path> list_images(const std::string& dir) {
  std::vector<fs::path> files;
  int64_t videos = 0;  // for the error about a folder without images
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw InputError(quoted(dir) + ": cannot list folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw InputError(quoted(dir) + ": cannot list folder: " + ec.message());
    std::error_code fec;
    // Dot-files are no frames: AppleDouble "._frame_001.jpg" copies that macOS leaves on other
    // file systems, for one.
    if (!it->is_regular_file(fec) || it->path().filename().string().rfind('.', 0) == 0) continue;
    if (is_image_name(it->path()))
      files.push_back(it->path());
    else
      videos += has_extension(it->path().string(), video_extensions());
  }
  // Plain byte-wise order of the names: frame_00009.png < frame_00010.png as long as the
  // numbers are zero-padded, which is what ffmpeg and most extractors write.
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  if (files.empty()) {
    const std::string hint =
        videos == 0 ? ""
                    : "; it holds " + std::to_string(videos) +
                          " video file(s), and a folder is read as the frames of one video: name "
                          "the videos themselves, or label each with `stam batch`";
    throw InputError(quoted(dir) +
                     ": folder has no image files (jpg, jpeg, png, bmp, webp, tif, tiff)" + hint);
  }
  return files;
}

// True for a JPEG file whose data stops before its end-of-image marker (FF D9; zero bytes after
// it are padding some cameras add). libjpeg decodes such a file, greying what is missing, and
// says so only on stderr.
bool jpeg_cut_short(const fs::path& file) {
  const std::string ext = ascii_lower(file.extension().string());
  if (ext != ".jpg" && ext != ".jpeg") return false;
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  const std::streamoff size = in.tellg();
  const std::streamoff tail = std::min<std::streamoff>(size, 4096);
  std::string bytes(static_cast<size_t>(std::max<std::streamoff>(tail, 0)), '\0');
  if (tail < 2 || !in.seekg(size - tail) || !in.read(bytes.data(), tail)) return false;
  const size_t end = bytes.find_last_not_of('\0');
  return end == std::string::npos || end < 1 || bytes.compare(end - 1, 2, "\xFF\xD9") != 0;
}

// A sampled image of a frames folder, as BGR; throws InputError naming it when it cannot be
// read, and adds a warning to `warnings` when it is a JPEG cut short.
cv::Mat read_folder_image(const fs::path& path, const std::string& dir,
                          std::vector<std::string>& warnings) {
  const std::string file = path.string();
  cv::Mat bgr = cv::imread(file, cv::IMREAD_COLOR);
  if (bgr.empty())
    throw InputError(quoted(file) + ": cannot read image (frame of folder " + quoted(dir) + ")");
  if (jpeg_cut_short(path))
    warnings.push_back(quoted(file) +
                       ": the JPEG data ends early (the file is cut short); its missing part "
                       "was decoded as grey");
  return bgr;
}

VideoFrames read_folder(const std::string& dir, const Chooser& choose, FrameKeeper& keep) {
  const std::vector<fs::path> files = list_images(dir);
  VideoFrames out;
  out.frame_count = static_cast<int64_t>(files.size());
  const std::vector<int64_t> indices = choose(out.frame_count, kFramesFolderFps).indices;
  std::map<int64_t, cv::Mat> frames;
  for (int64_t idx : sorted_unique(indices))
    frames[idx] = keep(read_folder_image(files[static_cast<size_t>(idx)], dir, out.warnings));
  fill_images(out, indices, frames, keep);
  if (keep.sizes_differ()) out.warnings.push_back(sizes_differ_warning());
  return out;
}

// A frames folder has no key frames to prefer: every image is read as it is.
VideoFrames read_any(const std::string& path, const Chooser& choose, Seek seek,
                     const FrameTransform& transform) {
  if (path.empty()) throw InputError("empty input path");
  FrameKeeper keep(transform);
  if (is_frames_folder(path)) return read_folder(path, choose, keep);
  return read_video(path, choose, seek, keep);
}

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

void check_input(const std::string& path) {
  if (path.empty()) throw InputError("empty input path");
  if (is_frames_folder(path)) {
    list_images(path);
  } else {
    check_video_file(path);
  }
}

bool is_frames_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

Seek parse_seek(const std::string& name) {
  if (name == "exact") return Seek::kExact;
  if (name == "keyframe") return Seek::kKeyframe;
  throw UsageError("--seek: unknown value '" + name + "' (expected 'exact' or 'keyframe')");
}

std::string to_string(Seek seek) {
  return seek == Seek::kKeyframe ? "keyframe" : "exact";
}

VideoFrames read_frames(const std::string& path, int64_t t, Sampling sampling, Seek seek,
                        const FrameTransform& transform) {
  if (t < 1) throw UsageError("number of frames to sample must be >= 1, got " + std::to_string(t));
  std::vector<int64_t> chosen;  // the last choice, before any key-frame mapping
  auto choose = [&](int64_t n, double fps) {
    Selection s;
    if (sampling == Sampling::kUniform) {
      s.indices = uniform_indices(n, t);
      s.depends_on_end = true;  // the positions spread over all n frames
      chosen = s.indices;
      return s;
    }
    if (!(fps > 0)) {
      throw InputError(quoted(path) +
                       ": reference sampling needs the frame rate, which the file "
                       "does not state");
    }
    s.indices = reference_indices(n, fps, t);
    // Reference positions depend on n only where they were clamped to the last frame.
    s.depends_on_end =
        reference_indices(std::numeric_limits<int64_t>::max() / 4, fps, t) != s.indices;
    chosen = s.indices;
    return s;
  };
  VideoFrames out = read_any(path, choose, seek, transform);
  const size_t distinct = sorted_unique(chosen).size();
  if (distinct < chosen.size()) {
    out.warnings.push_back("the video is too short for " + std::to_string(t) + " samples: only " +
                           std::to_string(distinct) + " distinct frame" +
                           (distinct == 1 ? "" : "s") + ", some used more than once");
  }
  return out;
}

VideoFrames read_frames_at(const std::string& path, const std::vector<int64_t>& indices) {
  if (indices.empty()) throw UsageError("read_frames_at: no frame positions given");
  for (int64_t i : indices) {
    if (i < 0) throw InputError(quoted(path) + ": negative frame position requested");
  }
  bool clamped = false;
  auto choose = [&](int64_t n, double) {
    Selection s;
    for (int64_t i : indices) {
      s.depends_on_end |= i >= n;
      s.indices.push_back(std::min(i, n - 1));
    }
    clamped = s.depends_on_end;
    return s;
  };
  VideoFrames out = read_any(path, choose, Seek::kExact, {});
  if (clamped) out.warnings.emplace_back("positions past the last frame were clamped");
  return out;
}

namespace {

// Position of sample k at `rate` samples per second of a `fps` stream. The small bias keeps
// products that are whole numbers in exact arithmetic (k * 30 / 1.6 for k = 8) from flooring
// one frame short.
int64_t sample_position(int64_t k, double fps, double rate) {
  return static_cast<int64_t>(std::floor(static_cast<double>(k) * fps / rate + 1e-9));
}

// Calls the sink for every sample whose position is `pos`, retrieving the frame only when one
// wants it; returns the next sample number.
int64_t feed_samples(int64_t k, int64_t pos, const StreamInfo& info, double rate,
                     const std::function<cv::Mat()>& frame, const SampleSink& sink) {
  if (sample_position(k, info.fps, rate) != pos) return k;
  const cv::Mat rgb = frame();
  for (; sample_position(k, info.fps, rate) == pos; ++k) sink(k, pos, rgb);
  return k;
}

StreamInfo stream_video(const std::string& path, double rate, const SampleSink& sink) {
  check_video_file(path);
  Watchdog watchdog(decode_timeout_s());
  cv::VideoCapture cap = open_video(path, watchdog);
  StreamInfo info;
  info.fps = stream_fps(cap);
  if (info.fps <= 0) throw InputError(quoted(path) + ": the file does not state its frame rate");
  const int64_t header = header_frame_count(cap);
  const int angle = static_cast<int>(cap.get(cv::CAP_PROP_ORIENTATION_META));
  std::vector<int64_t> stamps_us;  // each frame's timestamp, to notice a variable rate
  int64_t lost = 0;
  int64_t k = 0;
  // The clock restarts before each grab(): the sink's own time (the model) is not decoding.
  for (; watchdog.progress(), grab_past_damage(cap, watchdog, &lost); ++info.frame_count) {
    const int64_t pos = info.frame_count;
    // OpenCV stamps the frames the decoder gives out after the end of the file 0: only rising
    // stamps are kept.
    const int64_t stamp = std::llround(cap.get(cv::CAP_PROP_POS_MSEC) * 1000.0);
    if (stamps_us.empty() || stamp > stamps_us.back()) stamps_us.push_back(stamp);
    auto frame = [&] {
      cv::Mat bgr;
      if (!cap.retrieve(bgr) || bgr.empty() || bgr.type() != CV_8UC3)
        throw InputError(quoted(path) + ": frame " + std::to_string(pos) + " failed to decode");
      return bgr_to_rgb(bgr);
    };
    k = feed_samples(k, pos, info, rate, frame, sink);
  }
  if (watchdog.expired()) throw_stalled(path, watchdog);
  if (info.frame_count == 0) throw InputError(quoted(path) + ": no decodable video frames");
  info.samples = k;
  if (header > 0 && header != info.frame_count)
    info.warnings.push_back(header_count_warning(header, info.frame_count));
  if (lost > 0) info.warnings.push_back(lost_packets_warning(lost));
  if (variable_rate(stamps_us)) info.warnings.push_back(variable_rate_warning());
  if (angle != 0) info.warnings.push_back(rotation_warning(angle));
  return info;
}

StreamInfo stream_folder(const std::string& dir, double rate, const SampleSink& sink) {
  const std::vector<fs::path> files = list_images(dir);
  StreamInfo info;
  info.fps = kFramesFolderFps;
  info.frame_count = static_cast<int64_t>(files.size());
  const FrameTransform none;
  FrameKeeper keep(none);  // converts to RGB and notices images of different sizes
  int64_t k = 0;
  for (int64_t pos = 0; pos < info.frame_count; ++pos) {
    auto frame = [&] {
      return keep(read_folder_image(files[static_cast<size_t>(pos)], dir, info.warnings));
    };
    k = feed_samples(k, pos, info, rate, frame, sink);
  }
  info.samples = k;
  if (keep.sizes_differ()) info.warnings.push_back(sizes_differ_warning());
  return info;
}

}  // namespace

StreamInfo read_frames_at_rate(const std::string& path, double rate, const SampleSink& sink) {
  if (!(rate > 0) || !std::isfinite(rate))
    throw UsageError("sampling rate must be a positive number of frames per second");
  if (path.empty()) throw InputError("empty input path");
  if (is_frames_folder(path)) return stream_folder(path, rate, sink);
  return stream_video(path, rate, sink);
}

}  // namespace stam
