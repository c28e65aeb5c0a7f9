// The label box drawn on frames, and the video writer the rendered frames go through.
#include "render/overlay.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "stam/error.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
// Red equal to blue: the same colour in RGB and BGR frames.
const cv::Scalar kText(255, 255, 255), kTrack(100, 100, 100), kBar(80, 205, 80);

// The box's measures for a frame `height` pixels high: a text line is a 20th of it (at least 12
// pixels, so a 240-line frame's text is still legible).
struct Layout {
  int line = 0, pad = 0, bar = 0, thickness = 1;
  double scale = 0;

  explicit Layout(int height)
      : line(std::max(12, height / 20)),
        pad(std::max(2, line / 3)),
        bar(3 * line),
        thickness(std::max(1, int(std::lround(line / 24.0)))),
        scale(line / 30.0) {}
  int text_width(const std::string& s) const {
    int base = 0;
    return cv::getTextSize(s, kFont, scale, thickness, &base).width;
  }
  // Baseline of text line `i` in the box.
  int baseline(size_t i) const { return pad + int(i) * line + int(std::lround(line * 0.72)); }
};

std::string score_line(const Prediction& p) {
  return p.label + " " + format_number("%.2f", p.score);
}

}  // namespace

cv::Rect overlay_box(cv::Size size, const std::vector<Prediction>& top,
                     const std::string& caption) {
  const size_t lines = top.size() + (caption.empty() ? 0 : 1);
  if (lines == 0) return {};
  const Layout l(size.height);
  int width = 0;
  for (const Prediction& p : top)
    width = std::max(width, l.bar + l.pad + l.text_width(score_line(p)));
  if (!caption.empty()) width = std::max(width, l.text_width(caption));
  const cv::Rect box(0, 0, width + 2 * l.pad, int(lines) * l.line + 2 * l.pad);
  return box & cv::Rect(0, 0, size.width, size.height);
}

void draw_overlay(cv::Mat& frame, const std::vector<Prediction>& top, const std::string& caption) {
  if (frame.type() != CV_8UC3)
    throw UsageError("draw_overlay: the frame must be 8-bit, 3 channels");
  const cv::Rect box = overlay_box(frame.size(), top, caption);
  if (box.empty()) return;
  cv::Mat roi = frame(box);  // drawn on through this view only: nothing outside the box changes
  roi *= 0.4;
  const Layout l(frame.rows);
  const int bar_h = std::max(2, l.line / 2);
  for (size_t i = 0; i < top.size(); ++i) {
    const int y = l.baseline(i);
    const int filled = int(std::lround(std::clamp(top[i].score, 0.0, 1.0) * l.bar));
    const cv::Point corner(l.pad, y - bar_h);
    cv::rectangle(roi, cv::Rect(corner, cv::Size(l.bar, bar_h)), kTrack, cv::FILLED);
    if (filled > 0) cv::rectangle(roi, cv::Rect(corner, cv::Size(filled, bar_h)), kBar, cv::FILLED);
    cv::putText(roi, score_line(top[i]), {l.pad + l.bar + l.pad, y}, kFont, l.scale, kText,
                l.thickness, cv::LINE_AA);
  }
  if (!caption.empty())
    cv::putText(roi, caption, {l.pad, l.baseline(top.size())}, kFont, l.scale, kText, l.thickness,
                cv::LINE_AA);
}

}  // namespace stam
