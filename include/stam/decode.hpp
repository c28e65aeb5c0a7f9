#pragma once
// Reads the sampled frames of one input: a video file (OpenCV's FFmpeg backend) or a folder of
// image files taken, sorted by name, as the frames of one video.
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "stam/sample.hpp"

namespace stam {

struct VideoFrames {
  std::vector<cv::Mat> images;          // RGB, CV_8UC3, one per sampled index, in sample order
  std::vector<int64_t> indices;         // frame positions taken (may repeat when short)
  int64_t frame_count = 0;              // frames the input really has
  double fps = 0.0;                     // stream's average rate (0 for a frames folder)
  int width = 0, height = 0;            // after rotation
  std::string warning;                  // non-fatal oddity worth logging (header lied, ...)
};

// True when `path` is a directory (treated as a frames folder).
bool is_frames_folder(const std::string& path);

// Samples `t` frames with `sampling`. Throws InputError naming the path and the problem (missing,
// not a video, no decodable frames, empty folder, unreadable image).
VideoFrames read_frames(const std::string& path, int64_t t, Sampling sampling);

}  // namespace stam
