#pragma once
// Labels drawn onto video frames, and the video file they go to: what `stam timeline --render`
// writes, one frame of the input at a time.
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "stam/stam.hpp"

namespace stam {

// The box draw_overlay fills on a frame of `size`, clipped to the frame (empty when the frame is).
cv::Rect overlay_box(cv::Size size, const std::vector<Prediction>& top,
                     const std::string& caption = {});

// Draws `top` into a box at the frame's top left, one line per label ("label 0.87" beside a bar
// as long as its score), then `caption` ("t=12.4 s") when it is not empty: white text (OpenCV's
// Hershey font) on the frame darkened to 40%. Sizes follow the frame's height, so the box reads
// on 320x240 and 1080p alike; a frame too small for it gets the part that fits. Nothing outside
// overlay_box changes. The colours have equal red and blue, so `frame` (CV_8UC3) may be RGB or
// BGR. Throws UsageError for another type.
void draw_overlay(cv::Mat& frame, const std::vector<Prediction>& top,
                  const std::string& caption = {});

// Throws UsageError naming `flag` and the path unless it ends in .mp4, .mkv, .mov or .avi (any
// case): the containers VideoWriter writes.
void check_video_name(const std::string& path, const std::string& flag = "--render");

// A video file written frame by frame through OpenCV's FFmpeg backend: H.264 ('avc1'), else
// MPEG-4 Part 2 ('mp4v') where this OpenCV cannot encode H.264, in the container the extension
// names (.mp4, .mkv, .mov or .avi). FFmpeg's encoders round odd sizes down to even ones.
class VideoWriter {
 public:
  enum class Order { kRgb, kBgr };  // the channel order of the frames given to write()

  // Opens `path` for frames of `size` at `fps`. Throws UsageError naming the path (and `flag`)
  // for another extension, and when the file cannot be opened (a missing folder, no permission).
  VideoWriter(const std::string& path, double fps, cv::Size size, Order order = Order::kRgb,
              const std::string& flag = "--render");
  ~VideoWriter();  // close()s, if it was not
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  // Appends one CV_8UC3 frame in the writer's order; another size is resized to the writer's.
  // Throws UsageError once closed.
  void write(const cv::Mat& frame);
  // Finishes the file (its index and trailer); the frames written are then readable. Throws
  // UsageError when the file is missing or empty afterwards.
  void close();

  int64_t frames() const { return frames_; }
  cv::Size size() const { return size_; }

 private:
  std::string path_, flag_;
  cv::Size size_;
  Order order_;
  cv::VideoWriter writer_;
  int64_t frames_ = 0;
  bool open_ = false;
};

}  // namespace stam
