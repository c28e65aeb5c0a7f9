// timeline --plot: the leading labels' probabilities against time, over the top-1 segments.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "render/canvas.hpp"
#include "timeline/timeline.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

const Rgb kInk{40, 40, 40}, kGrid{215, 215, 215}, kOther{190, 190, 190};
const Rgb kPalette[kMaxPlotLabels] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},
                                      {214, 39, 40},  {148, 103, 189}, {140, 86, 75}};
constexpr int kWidth = 900, kHeight = 380;
constexpr double kLeft = 60, kRight = 660, kTop = 80, kBottom = 320, kBand = 12;

std::vector<double> softmax(const std::vector<float>& logits) {
  const float top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp(double(logits[i]) - top);
  for (double& v : p) v /= sum;
  return p;
}

// A round step (1, 2 or 5 x 10^k) giving at most about 8 ticks over `span`.
double tick_step(double span) {
  const double raw = std::max(span, 1e-3) / 8;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

struct Plot {
  const Timeline& t;
  std::vector<int64_t> labels;
  std::vector<std::vector<double>> probs;  // per window
  double duration;

  double x(double s) const { return kLeft + s / duration * (kRight - kLeft); }
  static double y(double p) { return kBottom - p * (kBottom - kTop); }
  Rgb color_of(int64_t index) const {
    const auto at = std::find(labels.begin(), labels.end(), index);
    return at == labels.end() ? kOther : kPalette[at - labels.begin()];
  }
  std::string name_of(int64_t index) const {
    for (const auto& w : t.windows)
      if (w.top_k.front().index == index) return w.top_k.front().label;
    return std::to_string(index);
  }

  void axes(Canvas& c) const {
    for (int i = 0; i <= 4; ++i) {
      c.line(kLeft, y(i / 4.0), kRight, y(i / 4.0), kGrid, 1);
      c.text(kLeft - 8, y(i / 4.0) + 4, format_number("%.2f", i / 4.0), kInk, 12, Align::kRight);
    }
    const double step = tick_step(duration);
    for (double s = 0; s <= duration + 1e-9; s += step) {
      c.line(x(s), kBottom, x(s), kBottom + 5, kInk, 1);
      c.text(x(s), kBottom + 20, format_number("%g", s), kInk, 12, Align::kCenter);
    }
    c.line(kLeft, kTop, kLeft, kBottom, kInk, 1);
    c.line(kLeft, kBottom, kRight, kBottom, kInk, 1);
    c.text((kLeft + kRight) / 2, kBottom + 44, "time (s)", kInk, 13, Align::kCenter);
    c.text(kLeft - 8, kTop - 24, "probability", kInk, 12, Align::kRight);
  }

  void band(Canvas& c) const {
    const double top = kTop - 8 - kBand;
    c.text(kLeft - 8, top + kBand - 1, "top-1", kInk, 12, Align::kRight);
    for (const Segment& s : t.segments)
      c.rect(x(s.start_s), top, x(s.end_s) - x(s.start_s), kBand, color_of(s.index));
  }

  void lines(Canvas& c) const {
    for (size_t l = 0; l < labels.size(); ++l) {
      std::vector<Point> points;
      for (size_t w = 0; w < t.windows.size(); ++w) {
        const auto& win = t.windows[w];
        points.push_back({x((win.start_s + win.end_s) / 2), y(probs[w][size_t(labels[l])])});
      }
      c.polyline(points, kPalette[l], 2);
      for (const Point& p : points) c.dot(p.x, p.y, 2.5, kPalette[l]);
      const double ly = kTop + 8 + 20.0 * double(l);
      c.line(kRight + 20, ly - 4, kRight + 44, ly - 4, kPalette[l], 3);
      c.text(kRight + 52, ly, name_of(labels[l]), kInk, 13);
    }
  }

  void draw(Canvas& c) const {
    const std::string name = std::filesystem::path(t.input).filename().string();
    c.text(kLeft, 26, "STAM timeline: " + path_text(name.empty() ? t.input : name), kInk, 16);
    c.text(kLeft, 44,
           format_number("windows of %g s", double(t.plan.frames) / t.plan.fps) +
               format_number(" every %g s; band: top-1 label of each stretch",
                             double(t.plan.stride) / t.plan.fps),
           kInk, 12);
    axes(c);
    band(c);
    lines(c);
  }
};

}  // namespace

std::vector<int64_t> leading_labels(const Timeline& t) {
  std::map<int64_t, double> mean;  // top-1 labels -> mean probability over all windows
  for (const auto& w : t.windows) mean[w.top_k.front().index] = 0;
  for (const auto& w : t.windows) {
    const std::vector<double> p = softmax(w.logits);
    for (auto& [index, sum] : mean) sum += p.at(size_t(index)) / double(t.windows.size());
  }
  std::vector<std::pair<double, int64_t>> ranked;
  for (const auto& [index, m] : mean) ranked.push_back({-m, index});
  std::sort(ranked.begin(), ranked.end());
  std::vector<int64_t> labels;
  for (size_t i = 0; i < ranked.size() && i < kMaxPlotLabels; ++i)
    labels.push_back(ranked[i].second);
  return labels;
}

void write_timeline_plot(const Timeline& t, const std::string& path) {
  check_plot_name(path);
  if (t.windows.empty()) throw UsageError("--plot " + path + ": the timeline has no windows");
  Plot plot{t, leading_labels(t), {}, 0};
  for (const auto& w : t.windows) {
    plot.probs.push_back(softmax(w.logits));
    plot.duration = std::max(plot.duration, w.end_s);
  }
  if (!(plot.duration > 0)) plot.duration = 1;
  write_plot(path, kWidth, kHeight, [&](Canvas& c) { plot.draw(c); });
}

}  // namespace stam
