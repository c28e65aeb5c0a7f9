#include "pipeline/video_clip.hpp"

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include "decode/decode.hpp"
#include "pipeline/pipeline.hpp"
#include "preprocess.hpp"
#include "util/clock.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

// Frames already resized and cropped -> the model's input tensor.
torch::Tensor stack(const std::vector<cv::Mat>& crops, int64_t s, torch::Device device) {
  const auto n = static_cast<int64_t>(crops.size());
  torch::Tensor pixels = frames_buffer({n, s, s, 3}, device);
  for (int64_t i = 0; i < n; ++i) {
    cv::Mat dst(static_cast<int>(s), static_cast<int>(s), CV_8UC3, pixels[i].data_ptr());
    crops[static_cast<size_t>(i)].copyTo(dst);
  }
  return pixels;
}

}  // namespace

Clip read_video_clip(const std::string& input, int64_t frames, int64_t image_size,
                     Sampling sampling, Seek seek, torch::Device device) {
  Clip clip;
  clip.input = input;
  auto t0 = Clock::now();
  const int size = static_cast<int>(image_size);
  VideoFrames decoded = read_frames(input, frames, sampling, seek, [size](const cv::Mat& rgb) {
    return preprocess_frame(rgb, size);
  });
  clip.timings.decode_ms = ms_since(t0) - decoded.transform_ms;
  for (const auto& w : decoded.warnings) spdlog::warn("{}: {}", path_line(input), w);
  spdlog::debug("{}: decoded {} frames in {:.1f} ms ({}; {} frames{}, {}x{})", input,
                decoded.images.size(), clip.timings.decode_ms,
                is_frames_folder(input) ? "frames folder"
                : decoded.seeked        ? "read on, seeking across long gaps"
                                        : "read sequentially",
                decoded.frame_count,
                decoded.fps > 0 ? fmt::format(" at {:.3g} fps", decoded.fps) : "", decoded.width,
                decoded.height);
  spdlog::trace("{}: frame indices {}", input, fmt::join(decoded.indices, " "));

  t0 = Clock::now();
  clip.pixels = stack(decoded.images, image_size, device);
  clip.timings.preprocess_ms = decoded.transform_ms + ms_since(t0);
  clip.frame_indices = std::move(decoded.indices);
  clip.frame_count = decoded.frame_count;
  clip.fps = decoded.fps;
  clip.warnings = std::move(decoded.warnings);
  decoded.images.clear();
  decoded.images.shrink_to_fit();
  // The decoder's buffers are free now; hand their pages back rather than carry them through
  // the model's run (glibc keeps freed memory for reuse, see configure_cpu_runtime()).
  malloc_trim(0);
  return clip;
}

torch::Tensor preprocess_frames(const std::vector<cv::Mat>& rgb, int64_t image_size,
                                torch::Device device) {
  std::vector<cv::Mat> crops;
  for (const auto& image : rgb) crops.push_back(preprocess_frame(image, int(image_size)));
  return stack(crops, image_size, device);
}

}  // namespace stam
