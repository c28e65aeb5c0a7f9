#pragma once
// Built with STAM_VIDEO only: a video file or a frames folder to a clip, and decoded frames to
// the model's input, both through the reference transform (preprocess.hpp).
#include <torch/types.h>

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "stam/stam.hpp"

namespace stam {

// Decode, sample and preprocess one video or frames folder (ClipReader::read's video half).
// Throws InputError.
Clip read_video_clip(const std::string& input, int64_t frames, int64_t image_size,
                     Sampling sampling, Seek seek, torch::Device device);

// Decoded RGB frames of any size -> (N, S, S, 3) uint8, resized and cropped as the reference
// does, in a frames_buffer for `device`.
torch::Tensor preprocess_frames(const std::vector<cv::Mat>& rgb, int64_t image_size,
                                torch::Device device);

}  // namespace stam
