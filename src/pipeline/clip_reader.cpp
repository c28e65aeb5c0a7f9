// ClipReader: an input to the clip the model takes. A .npy array of frames is read here, in
// every build; videos and frames folders go to video_clip.cpp, which a build without video
// (STAM_VIDEO=OFF) leaves out.
#include <c10/core/DeviceGuard.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "pipeline/pipeline.hpp"
#include "stam/error.hpp"
#include "util/clock.hpp"
#include "util/files.hpp"
#include "util/npy.hpp"
#include "util/text.hpp"
#if STAM_VIDEO
#include "decode/decode.hpp"
#include "pipeline/video_clip.hpp"
#endif

namespace stam {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "(" + s + ")";
}

// The frames of a .npy array, (N, H, W, 3) uint8 RGB as decoded: all N when N is the model's T,
// else T of them sampled as from a video of N frames. Frames already S x S are taken as they
// are (preprocessed); others go through the reference transform, which needs the video build.
Clip read_frames_array(const std::string& input, int64_t t, int64_t size, Sampling sampling,
                       torch::Device device) {
  Clip clip;
  clip.input = input;
  auto t0 = Clock::now();
  const NpyArray a = read_npy(input);
  clip.timings.decode_ms = ms_since(t0);
  t0 = Clock::now();
  const auto& shape = a.shape;
  if (npy_item_size(a.descr) != 1 || a.descr.substr(1) != "u1" || a.fortran_order ||
      shape.size() != 4 || shape[3] != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1)
    throw InputError(quoted_path(input) + ": holds a " + (a.fortran_order ? "Fortran-order " : "") +
                     a.descr + " array of shape " + shape_text(shape) +
                     "; frames are a C-order uint8 array (frames, height, width, 3) of RGB");
  const int64_t n = shape[0], h = shape[1], w = shape[2];
  if (sampling == Sampling::kReference && n != t)
    throw InputError(quoted_path(input) +
                     ": reference sampling needs the frame rate, which a .npy "
                     "array does not state (give exactly " +
                     std::to_string(t) + " frames, or use --sampling uniform)");
  clip.frame_indices = uniform_indices(n, t);  // 0 .. T-1 when the array holds T frames
  if (n < t)
    clip.warnings.push_back("the array holds " + std::to_string(n) + " frames, fewer than the " +
                            std::to_string(t) + " samples: some are used more than once");
  const size_t frame_bytes = static_cast<size_t>(h * w * 3);
  if (h == size && w == size) {
    clip.pixels = frames_buffer({t, size, size, 3}, device);
    auto* dst = static_cast<unsigned char*>(clip.pixels.data_ptr());
    for (size_t i = 0; i < clip.frame_indices.size(); ++i)
      std::memcpy(dst + i * frame_bytes,
                  a.data.data() + static_cast<size_t>(clip.frame_indices[i]) * frame_bytes,
                  frame_bytes);
  } else {
#if STAM_VIDEO
    std::vector<cv::Mat> rgb;
    for (int64_t idx : clip.frame_indices)
      rgb.emplace_back(
          static_cast<int>(h), static_cast<int>(w), CV_8UC3,
          const_cast<unsigned char*>(a.data.data()) + static_cast<size_t>(idx) * frame_bytes);
    clip.pixels = preprocess_frames(rgb, size, device);
#else
    throw InputError(quoted_path(input) + ": frames of " + std::to_string(w) + "x" +
                     std::to_string(h) + " need resizing, which this build without video " +
                     "support (STAM_VIDEO=OFF) does not do: give them resized and cropped to " +
                     std::to_string(size) + "x" + std::to_string(size));
#endif
  }
  clip.timings.preprocess_ms = ms_since(t0);
  clip.frame_count = n;
  for (const auto& warning : clip.warnings) spdlog::warn("{}: {}", path_line(input), warning);
  return clip;
}

#if !STAM_VIDEO
[[noreturn]] void no_video(const std::string& input) {
  throw InputError(quoted_path(input) +
                   ": this stam is built without video support (STAM_VIDEO=OFF); it reads "
                   "frames from .npy arrays of (frames, height, width, 3) uint8 RGB");
}
#endif

}  // namespace

torch::Tensor frames_buffer(at::IntArrayRef sizes, torch::Device device) {
  // Pinned memory belongs to the current GPU's context; on a thread of our own that is GPU 0,
  // which would get a context (hundreds of MB) of its own in a run on another GPU, so the
  // model's GPU is made current for the allocation.
  c10::OptionalDeviceGuard guard;
  if (device.is_cuda()) guard.reset_device(device);
  return torch::empty(sizes,
                      torch::TensorOptions().dtype(torch::kByte).pinned_memory(device.is_cuda()));
}

bool is_frames_array(const std::string& input) {
  return has_extension(input, {"npy"});
}

void check_clip_input(const std::string& input) {
  if (input.empty()) throw InputError("empty input path");
  if (is_frames_array(input)) return check_readable_file(input);
#if STAM_VIDEO
  check_input(input);
#else
  no_video(input);
#endif
}

ClipReader::ClipReader(int64_t frames, int64_t image_size, Sampling sampling, Seek seek,
                       torch::Device device)
    : frames_(frames), image_size_(image_size), sampling_(sampling), seek_(seek), device_(device) {}

Clip ClipReader::read(const std::string& input) const {
  if (is_frames_array(input)) {
    check_readable_file(input);
    return read_frames_array(input, frames_, image_size_, sampling_, device_);
  }
#if STAM_VIDEO
  return read_video_clip(input, frames_, image_size_, sampling_, seek_, device_);
#else
  no_video(input);
#endif
}

}  // namespace stam
