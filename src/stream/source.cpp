#include "stream/source.hpp"

#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>
#include <vector>

#include "decode/decode.hpp"
#include "stam/error.hpp"
#include "util/text.hpp"

namespace stam::stream {

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 6 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string describe(SourceKind kind) {
  switch (kind) {
    case SourceKind::kFile: return "video file";
    case SourceKind::kStdin: return "video stream on standard input";
    case SourceKind::kUrl: return "stream URL";
    case SourceKind::kCamera: return "camera";
  }
  return "source";
}

}  // namespace

SourceSpec parse_source(const std::string& source, bool realtime) {
  if (source.empty()) throw UsageError("stream: the source is empty (a file, -, a URL or a camera)");
  SourceSpec s;
  s.name = source;
  if (source == "-")
    s.kind = SourceKind::kStdin;
  else if (source.find("://") != std::string::npos)
    s.kind = SourceKind::kUrl;
  else if (all_digits(source) || starts_with(source, "/dev/video"))
    s.kind = SourceKind::kCamera;
  s.live = s.kind != SourceKind::kFile || realtime;
  s.paced = s.kind == SourceKind::kFile && realtime;
  return s;
}

Source::Source(SourceSpec spec, double timeout_s) : spec_(std::move(spec)), timeout_s_(timeout_s) {}

void Source::open() {
  cap_.release();
  const std::string& name = spec_.name;
  if (spec_.kind == SourceKind::kFile) check_input(name);  // missing, empty, not a regular file
  const int limit_ms = static_cast<int>(std::clamp(timeout_s_ * 1000.0, 1.0, 1e9));
  const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, limit_ms,
                                   cv::CAP_PROP_READ_TIMEOUT_MSEC, limit_ms};
  try {
    switch (spec_.kind) {
      case SourceKind::kCamera:
        if (all_digits(name))
          cap_.open(std::stoi(name), cv::CAP_V4L2, params);
        else
          cap_.open(name, cv::CAP_V4L2, params);
        break;
      case SourceKind::kStdin: cap_.open("pipe:0", cv::CAP_FFMPEG, params); break;
      default: cap_.open(name, cv::CAP_FFMPEG, params);
    }
  } catch (const cv::Exception& e) {
    throw InputError(path_line(name) + ": cannot open the " + describe(spec_.kind) + ": " +
                     e.what());
  }
  if (!cap_.isOpened())
    throw InputError(path_line(name) + ": cannot open the " + describe(spec_.kind) +
                     (spec_.kind == SourceKind::kFile ? " (not a video FFmpeg can open)"
                                                      : " (unreachable, or not a video stream)"));
  // Frames come out upright as a player shows them, as the other commands read files.
  cap_.set(cv::CAP_PROP_ORIENTATION_AUTO, 1);
}

double Source::fps() {
  const double fps = cap_.get(cv::CAP_PROP_FPS);
  if (std::isfinite(fps) && fps > 0 && fps <= 1000) return fps;
  if (spec_.kind == SourceKind::kFile)
    throw InputError(path_line(spec_.name) + ": the file does not state its frame rate");
  if (!warned_fps_)
    spdlog::warn("{}: the source states no frame rate; assuming {} fps", path_line(spec_.name),
                 kAssumedFps);
  warned_fps_ = true;
  return kAssumedFps;
}

bool Source::grab() {
  try {
    return cap_.grab();
  } catch (const cv::Exception& e) {
    spdlog::warn("{}: reading failed: {}", path_line(spec_.name), e.what());
    return false;
  }
}

cv::Mat Source::retrieve() {
  cv::Mat bgr;
  if (!cap_.retrieve(bgr) || bgr.empty() || bgr.type() != CV_8UC3)
    throw InputError(path_line(spec_.name) + ": a frame failed to decode");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

}  // namespace stam::stream
