// timeline --render: the input again, each frame with the labels of the window covering it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "decode/decode.hpp"
#include "render/overlay.hpp"
#include "timeline/timeline.hpp"
#include "util/text.hpp"

namespace stam {

size_t window_at(const std::vector<TimelineWindow>& windows, double time_s) {
  const auto after =
      std::upper_bound(windows.begin(), windows.end(), time_s,
                       [](double s, const TimelineWindow& w) { return s < w.start_s; });
  return after == windows.begin() ? 0 : size_t(after - windows.begin()) - 1;
}

int64_t render_timeline(const Timeline& t, const std::string& input, const std::string& out) {
  if (t.windows.empty()) throw UsageError("--render " + out + ": the timeline has no windows");
  std::unique_ptr<VideoWriter> writer;  // opened at the first frame, whose size it takes
  read_frames_at_rate(input, t.video_fps, [&](int64_t, int64_t pos, const cv::Mat& rgb) {
    const double time_s = static_cast<double>(pos) / t.video_fps;
    if (!writer) writer = std::make_unique<VideoWriter>(out, t.video_fps, rgb.size());
    cv::Mat frame = rgb.clone();
    draw_overlay(frame, t.windows[window_at(t.windows, time_s)].top_k,
                 "t=" + format_number("%.1f", time_s) + " s");
    writer->write(frame);
  });
  if (!writer) throw InputError(path_line(input) + ": no frames to render");
  writer->close();
  spdlog::info("{}: {} frames rendered from {}", path_line(out), writer->frames(),
               path_line(input));
  return writer->frames();
}

}  // namespace stam
