// Reading the sampled frames of a video file or a frames folder.
//
// Video files are read sequentially: grab() every frame up to the last one needed and retrieve()
// (colour-convert) only the sampled ones. That is always exact but decodes up to the last sampled
// frame (and, for uniform sampling, on to the end to count). FFmpeg seeks by timestamp, so
// "frame k" after a seek is the decoder's k-th output frame only when timestamp and position agree
// frame for frame; AVI files with B-frames report timestamps out of order (PREPROCESSING.md), and
// variable-rate or gappy files break the agreement anywhere.
// So seeking is an optimisation for one case we can check: a long, unfragmented MP4/MOV (its
// header holds the true number of samples) whose decoded frames all sit on the constant-rate grid
// at the positions we count. Every seek is verified and any inconsistency discards the attempt and
// falls back to the sequential read (see "seeking" below).
#include "stam/decode.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include "stam/error.hpp"

namespace fs = std::filesystem;

namespace stam {
namespace {

// FFmpeg's own defaults are 30 s too; set explicitly so the guarantee does not depend on the
// OpenCV version. They bound a stalled read; decoding a regular file never comes near them.
constexpr int kOpenTimeoutMs = 30000;
constexpr int kReadTimeoutMs = 30000;

// The frames to take once the frame count `n` is known.
struct Selection {
  std::vector<int64_t> indices;  // in sample order, all in [0, n)
  // True when the choice would change if the file had more frames than `n`: then the real count
  // must be confirmed by reading to the end.
  bool depends_on_end = false;
};
// Called with the frame count and the stream's frame rate.
using Chooser = std::function<Selection(int64_t n, double fps)>;

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

cv::Mat bgr_to_rgb(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

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

cv::VideoCapture open_video(const std::string& path) {
  const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, kOpenTimeoutMs,
                                   cv::CAP_PROP_READ_TIMEOUT_MSEC, kReadTimeoutMs};
  cv::VideoCapture cap;
  try {
    cap.open(path, cv::CAP_FFMPEG, params);
  } catch (const cv::Exception& e) {
    throw InputError(quoted(path) + ": cannot open as a video: " + e.what());
  }
  if (!cap.isOpened()) {
    throw InputError(quoted(path) + ": not a video file FFmpeg can open");
  }
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

// Result of one sequential pass over a video.
struct PassResult {
  std::map<int64_t, cv::Mat> frames;  // position -> RGB image, for the wanted positions decoded
  int64_t grabbed = 0;                // frames the decoder produced during the pass
  bool reached_end = false;           // grab() failed: no more frames (or undecodable rest)
  std::vector<int64_t> failed;        // wanted positions whose retrieve() failed
};

// Grabs frames from the start, retrieving the `wanted` positions (sorted, unique). Stops after
// the last wanted one, or goes on to the end of the file when `count_to_end` is set.
PassResult sequential_pass(cv::VideoCapture& cap, const std::vector<int64_t>& wanted,
                           bool count_to_end) {
  PassResult r;
  size_t next = 0;
  while (next < wanted.size() || count_to_end) {
    if (!cap.grab()) {
      r.reached_end = true;
      break;
    }
    const int64_t pos = r.grabbed++;
    if (next < wanted.size() && wanted[next] == pos) {
      ++next;
      cv::Mat bgr;
      if (cap.retrieve(bgr) && !bgr.empty() && bgr.type() == CV_8UC3) {
        r.frames[pos] = bgr_to_rgb(bgr);
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

void append_warning(std::string& warning, const std::string& text) {
  if (!warning.empty()) warning += "; ";
  warning += text;
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
                 const std::map<int64_t, cv::Mat>& frames) {
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
    append_warning(out.warning,
                   "some sampled frames could not be decoded; nearest decoded frames "
                   "were used instead");
  }
  out.height = out.images.front().rows;
  out.width = out.images.front().cols;
}

double stream_fps(cv::VideoCapture& cap) {
  const double fps = cap.get(cv::CAP_PROP_FPS);
  return std::isfinite(fps) && fps > 0 ? fps : 0.0;
}

// ---- seeking ----

// Seek only across a gap of more than this many frames. A seek makes the decoder start at the
// key frame before the target (OpenCV aims 16 frames early) and decode forward, so it costs up to
// one key-frame interval + 16 frames of decoding. Common encoders put key frames at most 250
// frames apart (x264/x265 default keyint; cameras and phones use 1-2 s), so above ~300 frames a
// seek decodes less than reading on for any of them. (2 s of frames would be too eager: a 30 fps
// x264 file with the default 250-frame interval could then decode 4x more per seek.)
constexpr int64_t kMinSeekGap = 300;
// To confirm the frame count, land this many frames before the header's end and read to the end.
// Not just 1-2: the last few frames, flushed out of the B-frame reorder queue, carry no timestamp
// in OpenCV 4.6, and the landing frame must have one to be checked.
constexpr int64_t kEndProbeFrames = 8;
// A frame is "on the grid" when timestamp x fps is within this of its position. Exact constant-rate
// files hit the grid to ~1e-9; millisecond-rounded time bases stay within 0.03 even at 60 fps,
// well inside OpenCV's own rounding of timestamps to positions; a file whose average rate differs
// from its frame spacing (variable rate, dropped frames) drifts off the grid.
constexpr double kGridTolerance = 0.1;

uint64_t read_be(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// True for an ISO base media file (MP4, MOV, M4V, 3GP: first box 'ftyp') with a 'moov' box and no
// 'moof' fragments. Only then is the header's frame count the number of samples actually stored
// (Matroska/WebM, AVI and fragmented MP4 give an estimate from duration x rate, which cannot
// reveal a dropped frame). Walks the top-level boxes only; the file's extension is not trusted.
bool is_unfragmented_mp4(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (!in || ec) return false;
  bool moov = false;
  for (uint64_t offset = 0; offset + 8 <= size;) {
    unsigned char h[16];
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(reinterpret_cast<char*>(h), 8)) return false;
    const std::string type(reinterpret_cast<const char*>(h) + 4, 4);
    uint64_t box = read_be(h, 4), header = 8;
    if (box == 1) {  // 64-bit size follows the type
      if (!in.read(reinterpret_cast<char*>(h) + 8, 8)) return false;
      box = read_be(h + 8, 8);
      header = 16;
    } else if (box == 0) {  // box runs to the end of the file
      box = size - offset;
    }
    if (box < header || (offset == 0 && type != "ftyp") || type == "moof") return false;
    moov |= type == "moov";
    offset += box;
  }
  return moov;
}

bool worth_seeking(int64_t pos, int64_t target) {
  return target - pos > kMinSeekGap;
}

// What a seeking read has to do, from the header's frame count `n` and rate.
struct SeekPlan {
  int64_t n = 0;
  double fps = 0.0;
  std::vector<int64_t> indices;  // in sample order
  std::vector<int64_t> wanted;   // sorted, unique
  bool confirm_end = false;      // the choice depends on n: check that the file ends at n
  int64_t end_probe = 0;         // where the end check lands
};

// True when some stretch of the plan is long enough to seek over (reading starts at frame 0).
bool plan_has_long_gap(const SeekPlan& plan) {
  int64_t pos = 1;  // frame 0 is always read: it fixes the timestamp origin
  for (int64_t w : plan.wanted) {
    if (worth_seeking(pos, w)) return true;
    pos = std::max(pos, w + 1);
  }
  return plan.confirm_end && worth_seeking(pos, plan.end_probe);
}

// Reads a video frame by frame, tracking the position of the next frame itself and checking each
// frame's timestamp against it. Any failed check makes the caller give up seeking.
class CheckedReader {
 public:
  CheckedReader(cv::VideoCapture& cap, double fps) : cap_(cap), fps_(fps) {}
  int64_t pos() const { return pos_; }

  // Grabs frame pos(). A frame without a timestamp is accepted only when `need_time` is false.
  bool grab(bool need_time) {
    if (!cap_.grab()) return false;
    const double ms = cap_.get(cv::CAP_PROP_POS_MSEC);
    const int64_t i = pos_++;
    const double x = ms * fps_ / 1000.0;
    if (i == 0) {  // OpenCV counts positions from the first frame's timestamp; so do we
      origin_ = x;
      return true;
    }
    if (ms <= 0) return !need_time;  // OpenCV reports 0 for "no timestamp"
    return std::abs(x - origin_ - static_cast<double>(i)) < kGridTolerance;
  }

  // OpenCV 4.6 seeks to the key frame before the target's timestamp and decodes forward,
  // counting frames by timestamp. Accept the result only if OpenCV says it is at `k` and the
  // frame it delivers next has the timestamp of position k.
  bool seek(int64_t k) {
    if (!cap_.set(cv::CAP_PROP_POS_FRAMES, static_cast<double>(k))) return false;
    if (std::llround(cap_.get(cv::CAP_PROP_POS_FRAMES)) != k) return false;
    pos_ = k;
    return grab(true);
  }

  // Seeks to or reads on to frame k and leaves it as the current frame.
  bool go_to(int64_t k) {
    if (worth_seeking(pos_, k)) return seek(k);
    while (pos_ <= k) {
      if (!grab(false)) return false;
    }
    return true;
  }

  bool retrieve(std::map<int64_t, cv::Mat>& frames) {
    cv::Mat bgr;
    if (!cap_.retrieve(bgr) || bgr.empty() || bgr.type() != CV_8UC3) return false;
    frames[pos_ - 1] = bgr_to_rgb(bgr);
    return true;
  }

  // Reads to the end of the file; true when it ends exactly after frame n-1.
  bool ends_at(int64_t n) {
    while (grab(false)) {
    }
    return pos_ == n;
  }

 private:
  cv::VideoCapture& cap_;
  double fps_;
  int64_t pos_ = 0;
  double origin_ = 0.0;
};

// The plan for reading `path` by seeking, when that applies: the container keeps a true frame
// count (see is_unfragmented_mp4) and some gap is long enough to pay for a seek.
std::optional<SeekPlan> make_seek_plan(const std::string& path, cv::VideoCapture& cap,
                                       const Chooser& choose) {
  SeekPlan plan;
  plan.fps = stream_fps(cap);
  plan.n = header_frame_count(cap);
  if (plan.fps <= 0 || plan.n <= kMinSeekGap || !is_unfragmented_mp4(path)) return std::nullopt;
  const Selection sel = choose(plan.n, plan.fps);
  plan.indices = sel.indices;
  plan.wanted = sorted_unique(sel.indices);
  plan.confirm_end = sel.depends_on_end;
  plan.end_probe = plan.n - kEndProbeFrames;
  if (!plan_has_long_gap(plan)) return std::nullopt;
  return plan;
}

// Reads the plan, seeking across its long gaps. nullopt when any check fails; the capture is then
// in an unknown state and must not be reused.
std::optional<std::map<int64_t, cv::Mat>> read_plan(cv::VideoCapture& cap, const SeekPlan& plan) {
  CheckedReader reader(cap, plan.fps);
  std::map<int64_t, cv::Mat> frames;
  if (!reader.grab(true)) return std::nullopt;  // frame 0: the timestamp origin
  for (int64_t w : plan.wanted) {
    if (w > 0 && !reader.go_to(w)) return std::nullopt;
    if (!reader.retrieve(frames)) return std::nullopt;
  }
  if (plan.confirm_end) {
    if (reader.pos() <= plan.end_probe && !reader.go_to(plan.end_probe)) return std::nullopt;
    if (!reader.ends_at(plan.n)) return std::nullopt;
  }
  return frames;
}

std::optional<VideoFrames> read_video_seeking(cv::VideoCapture& cap, const SeekPlan& plan) {
  auto frames = read_plan(cap, plan);
  if (!frames) return std::nullopt;
  VideoFrames out;
  out.fps = plan.fps;
  out.frame_count = plan.n;
  out.seeked = true;
  fill_images(out, plan.indices, *frames);
  return out;
}

// ---- sequential reading ----

VideoFrames read_video_sequential(const std::string& path, cv::VideoCapture cap,
                                  const Chooser& choose) {
  VideoFrames out;
  out.fps = stream_fps(cap);

  int64_t n = header_frame_count(cap);
  bool count_known = false;  // n was counted by decoding, not read from the header
  if (n == 0) {
    // No usable header count (some AVI/MKV/WebM files): decode once to count.
    n = sequential_pass(cap, {}, true).grabbed;
    if (n == 0) throw InputError(quoted(path) + ": no decodable video frames");
    count_known = true;
    cap = open_video(path);
  }

  std::map<int64_t, cv::Mat> frames;
  Selection sel;
  // At most two passes: the second one runs only when the header's count proved wrong.
  for (int pass = 0; pass < 2; ++pass) {
    sel = choose(n, out.fps);
    const std::vector<int64_t> wanted = sorted_unique(sel.indices);
    PassResult r = sequential_pass(cap, wanted, sel.depends_on_end && !count_known);
    frames.insert(r.frames.begin(), r.frames.end());
    const bool count_wrong = !count_known && r.reached_end && r.grabbed != n;
    if (count_wrong && pass == 0) {
      if (r.grabbed == 0) throw InputError(quoted(path) + ": no decodable video frames");
      append_warning(out.warning, "header says " + std::to_string(n) + " frames but the file has " +
                                      std::to_string(r.grabbed));
      n = r.grabbed;
      count_known = true;
      sel = choose(n, out.fps);
      if (all_present(sorted_unique(sel.indices), frames)) break;
      cap = open_video(path);  // resample over the real count, reading again from the start
      continue;
    }
    if (!r.failed.empty()) {
      append_warning(out.warning,
                     std::to_string(r.failed.size()) + " sampled frame(s) failed to decode");
    }
    if (r.reached_end && r.grabbed < n) {
      append_warning(out.warning, "file ended after " + std::to_string(r.grabbed) + " of " +
                                      std::to_string(n) + " frames");
      n = r.grabbed;
    }
    break;
  }
  if (frames.empty()) throw InputError(quoted(path) + ": no decodable video frames");
  out.frame_count = std::max<int64_t>(n, 1);
  fill_images(out, sel.indices, frames);
  return out;
}

VideoFrames read_video(const std::string& path, const Chooser& choose) {
  check_video_file(path);
  cv::VideoCapture cap = open_video(path);
  if (const auto plan = make_seek_plan(path, cap, choose)) {
    if (auto out = read_video_seeking(cap, *plan)) return std::move(*out);
    cap = open_video(path);  // the failed attempt left the capture somewhere mid-file
  }
  return read_video_sequential(path, std::move(cap), choose);
}

// ---- frames folder ----

bool is_image_name(const fs::path& p) {
  static const std::set<std::string> kExts = {".jpg",  ".jpeg", ".png", ".bmp",
                                              ".webp", ".tif",  ".tiff"};
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return kExts.count(ext) != 0;
}

std::vector<fs::path> list_images(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw InputError(quoted(dir) + ": cannot list folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw InputError(quoted(dir) + ": cannot list folder: " + ec.message());
    std::error_code fec;
    if (it->is_regular_file(fec) && is_image_name(it->path())) files.push_back(it->path());
  }
  // Plain byte-wise order of the names: frame_00009.png < frame_00010.png as long as the
  // numbers are zero-padded, which is what ffmpeg and most extractors write.
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  if (files.empty()) {
    throw InputError(quoted(dir) +
                     ": folder has no image files (jpg, jpeg, png, bmp, webp, tif, tiff)");
  }
  return files;
}

VideoFrames read_folder(const std::string& dir, const Chooser& choose) {
  const std::vector<fs::path> files = list_images(dir);
  VideoFrames out;
  out.frame_count = static_cast<int64_t>(files.size());
  const std::vector<int64_t> indices = choose(out.frame_count, kFramesFolderFps).indices;
  std::map<int64_t, cv::Mat> frames;
  for (int64_t idx : sorted_unique(indices)) {
    const std::string file = files[static_cast<size_t>(idx)].string();
    cv::Mat bgr = cv::imread(file, cv::IMREAD_COLOR);
    if (bgr.empty())
      throw InputError(quoted(file) + ": cannot read image (frame of folder " + quoted(dir) + ")");
    frames[idx] = bgr_to_rgb(bgr);
  }
  fill_images(out, indices, frames);
  for (const auto& [idx, img] : frames) {
    if (img.size() != frames.begin()->second.size()) {
      append_warning(out.warning, "images in the folder have different sizes");
      break;
    }
  }
  return out;
}

VideoFrames read_any(const std::string& path, const Chooser& choose) {
  if (path.empty()) throw InputError("empty input path");
  if (is_frames_folder(path)) return read_folder(path, choose);
  return read_video(path, choose);
}

}  // namespace

bool is_frames_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

VideoFrames read_frames(const std::string& path, int64_t t, Sampling sampling) {
  if (t < 1) throw UsageError("number of frames to sample must be >= 1, got " + std::to_string(t));
  auto choose = [&](int64_t n, double fps) {
    Selection s;
    if (sampling == Sampling::kUniform) {
      s.indices = uniform_indices(n, t);
      s.depends_on_end = true;  // the positions spread over all n frames
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
    return s;
  };
  return read_any(path, choose);
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
  VideoFrames out = read_any(path, choose);
  if (clamped) append_warning(out.warning, "positions past the last frame were clamped");
  return out;
}

}  // namespace stam
