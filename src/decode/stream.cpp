// Fixed-rate reads (read_frames_at_rate): a video file or frames folder read in order, one
// decoded frame held at a time, each frame handed to a sink for every sample that falls on it.
#include <opencv2/videoio.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "decode/decode.hpp"
#include "decode/detail.hpp"
#include "indexed_reader.hpp"
#include "stam/error.hpp"
#include "util/files.hpp"
#include "util/text.hpp"

namespace fs = std::filesystem;

namespace stam {
namespace {

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
  check_readable_file(path);
  Watchdog watchdog(decode_timeout_s());
  cv::VideoCapture cap = open_video(path, watchdog);
  StreamInfo info;
  info.fps = stream_fps(cap);
  if (info.fps <= 0)
    throw InputError(quoted_path(path) + ": the file does not state its frame rate");
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
        throw InputError(quoted_path(path) + ": frame " + std::to_string(pos) +
                         " failed to decode");
      return bgr_to_rgb(bgr);
    };
    k = feed_samples(k, pos, info, rate, frame, sink);
  }
  if (watchdog.expired()) throw_stalled(path, watchdog);
  if (info.frame_count == 0) throw InputError(quoted_path(path) + ": no decodable video frames");
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

// The small bias keeps products that are whole numbers in exact arithmetic (k * 30 / 1.6 for
// k = 8) from flooring one frame short.
int64_t sample_position(int64_t k, double fps, double rate) {
  return static_cast<int64_t>(std::floor(static_cast<double>(k) * fps / rate + 1e-9));
}

StreamInfo read_frames_at_rate(const std::string& path, double rate, const SampleSink& sink) {
  if (!(rate > 0) || !std::isfinite(rate))
    throw UsageError("sampling rate must be a positive number of frames per second");
  if (path.empty()) throw InputError("empty input path");
  if (is_frames_folder(path)) return stream_folder(path, rate, sink);
  return stream_video(path, rate, sink);
}

}  // namespace stam
