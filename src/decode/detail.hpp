#pragma once
// What the files of src/decode share: the choice of frames and the frames kept (decode.cpp), and
// the steps of reading video files (video_file.cpp) and frames folders (frames_folder.cpp) that
// the sampled reads and the fixed-rate reads (stream.cpp) both take. Internal header.
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "decode/decode.hpp"

namespace stam {

// The frames to take once the frame count `n` is known.
struct Selection {
  std::vector<int64_t> indices;  // in sample order, all in [0, n)
  // True when the choice would change if the file had more frames than `n`: then the real count
  // must be confirmed by reading to the end.
  bool depends_on_end = false;
};
// Called with the frame count and the stream's frame rate.
using Chooser = std::function<Selection(int64_t n, double fps)>;

// A decoded frame (BGR, as OpenCV gives it) as the RGB the caller gets.
cv::Mat bgr_to_rgb(const cv::Mat& bgr);

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

std::vector<int64_t> sorted_unique(std::vector<int64_t> v);

// Puts the frames at `indices` (sample order) from `frames` (position -> kept frame) into `out`,
// a position that failed to decode taking the nearest decoded frame, with a warning; then
// `keep`'s report.
void fill_images(VideoFrames& out, const std::vector<int64_t>& indices,
                 const std::map<int64_t, cv::Mat>& frames, const FrameKeeper& keep);

// ---- video files (video_file.cpp) ----

// Throws the InputError for a decode that `watchdog` found making no progress.
[[noreturn]] void throw_stalled(const std::string& path, const Watchdog& watchdog);

// OpenCV's FFmpeg backend stops opening after its open timeout and a grab() after its read
// timeout, both counted afresh for each call: set to the watchdog's limit, a stalled read ends
// with the watchdog expired, which tells it from the end of the file.
cv::VideoCapture open_video(const std::string& path, Watchdog& watchdog);

// Frame count from the container header; 0 when unknown or nonsensical.
int64_t header_frame_count(cv::VideoCapture& cap);
// The stream's average frame rate; 0 when unknown.
double stream_fps(cv::VideoCapture& cap);

// The next frame, passing over packets the decoder refuses; false at the end of the file or once
// the watchdog expired. Adds the packets passed over to `*lost`.
bool grab_past_damage(cv::VideoCapture& cap, const Watchdog& watchdog, int64_t* lost);

// Warnings that both the sampled and the fixed-rate reads of a video file give.
std::string lost_packets_warning(int64_t lost);
// A header count that proved wrong: too high means a cut or damaged file, frames an MP4 edit
// list leaves out (a stream-copied trim), or an estimate (duration x rate, MPEG-TS, Matroska);
// too low, an estimate fooled by a variable rate.
std::string header_count_warning(int64_t header, int64_t decoded);
std::string variable_rate_warning();
std::string rotation_warning(int angle);  // angle: CAP_PROP_ORIENTATION_META

// The frames `choose` picks from a video file: through the container's index where the file
// qualifies, else by a sequential read (see video_file.cpp).
VideoFrames read_video(const std::string& path, const Chooser& choose, Seek seek,
                       FrameKeeper& keep);

// ---- frames folders (frames_folder.cpp) ----

// The image files of folder `dir`, sorted by name; throws InputError when the folder cannot be
// listed or holds none.
std::vector<std::filesystem::path> list_images(const std::string& dir);
// A sampled image of a frames folder, as BGR; throws InputError naming it when it cannot be
// read, and adds a warning to `warnings` when it is a JPEG cut short.
cv::Mat read_folder_image(const std::filesystem::path& path, const std::string& dir,
                          std::vector<std::string>& warnings);
// The warning for a folder whose images are not all of one size.
std::string sizes_differ_warning();
// The frames `choose` picks from a frames folder, every image read as it is.
VideoFrames read_folder(const std::string& dir, const Chooser& choose, FrameKeeper& keep);

}  // namespace stam
