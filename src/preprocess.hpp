#pragma once
// The reference evaluation transform, to the bit: torchvision Resize(int(crop / 0.875)) over a
// PIL image with BILINEAR resampling (antialiased when shrinking, 8-bit rounding between the two
// passes), then CenterCrop(crop). src/preprocess.cpp says how the resampling is computed.
//
// All functions take and return 8-bit RGB images (CV_8UC3) and are thread-safe.
#include <opencv2/core.hpp>

namespace stam {

// PIL Image.resize((width, height), BILINEAR) on an 8-bit, 3-channel image.
cv::Mat resize_bilinear_pil(const cv::Mat& rgb, int width, int height);

// torchvision Resize(size) with an int size: short side -> size, long side int(size*long/short).
cv::Mat resize_short_side(const cv::Mat& rgb, int size);

// torchvision CenterCrop(size): offsets int(round((dim - size) / 2.0)), zero padding if smaller.
cv::Mat center_crop(const cv::Mat& rgb, int size);

// The short-side length the reference resizes to before cropping `crop`: int(crop / 0.875).
int resize_size_for_crop(int crop);

// resize_short_side(rgb, resize_size_for_crop(crop)) then center_crop(.., crop).
cv::Mat preprocess_frame(const cv::Mat& rgb, int crop);

}  // namespace stam
