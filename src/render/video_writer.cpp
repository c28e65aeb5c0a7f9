// VideoWriter: frames to a video file through OpenCV's FFmpeg backend.
#include <spdlog/spdlog.h>
#include <opencv2/imgproc.hpp>

#include <filesystem>

#include "render/overlay.hpp"
#include "stam/error.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

cv::VideoWriter open_writer(const std::string& path, double fps, cv::Size size) {
  cv::VideoWriter writer;
  for (const char* fourcc : {"avc1", "mp4v"}) {
    try {
      writer.open(path, cv::CAP_FFMPEG,
                  cv::VideoWriter::fourcc(fourcc[0], fourcc[1], fourcc[2], fourcc[3]), fps, size);
    } catch (const cv::Exception&) {
    }
    if (writer.isOpened()) {
      spdlog::debug("{}: writing {}x{} at {} fps as '{}'", path_line(path), size.width, size.height,
                    fps, fourcc);
      break;
    }
  }
  return writer;
}

}  // namespace

void check_video_name(const std::string& path, const std::string& flag) {
  if (!has_extension(path, {"mp4", "mkv", "mov", "avi"}))
    throw UsageError(flag + " " + path + ": the file name must end in .mp4, .mkv, .mov or .avi");
}

VideoWriter::VideoWriter(const std::string& path, double fps, cv::Size size, Order order,
                         const std::string& flag)
    : path_(path), flag_(flag), size_(size), order_(order) {
  check_video_name(path, flag);
  if (!(fps > 0) || size.width <= 0 || size.height <= 0)
    throw UsageError(flag + " " + path + ": no frame rate or size to write a video at");
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    throw UsageError(flag + " " + path + ": folder " + parent.string() + " does not exist");
  writer_ = open_writer(path, fps, size);
  if (!writer_.isOpened())
    throw UsageError(flag + " " + path + ": cannot be opened to write a video");
  open_ = true;
}

VideoWriter::~VideoWriter() {
  if (!open_) return;
  try {
    close();
  } catch (const Error& e) {
    spdlog::warn("{}", e.what());
  }
}

void VideoWriter::write(const cv::Mat& frame) {
  if (!open_) throw UsageError(flag_ + " " + path_ + ": written to after close()");
  if (frame.type() != CV_8UC3)
    throw UsageError(flag_ + " " + path_ + ": frames must be 8-bit, 3 channels");
  cv::Mat sized = frame;  // the caller's frame itself is never changed
  if (frame.size() != size_) cv::resize(frame, sized, size_, 0, 0, cv::INTER_AREA);
  if (order_ == Order::kBgr) {
    writer_.write(sized);
  } else {
    cv::Mat bgr;
    cv::cvtColor(sized, bgr, cv::COLOR_RGB2BGR);
    writer_.write(bgr);
  }
  ++frames_;
}

void VideoWriter::close() {
  if (!open_) return;
  open_ = false;
  writer_.release();
  std::error_code ec;
  if (std::filesystem::file_size(path_, ec) == 0 || ec)
    throw UsageError(flag_ + " " + path_ + ": the video could not be written");
}

}  // namespace stam
