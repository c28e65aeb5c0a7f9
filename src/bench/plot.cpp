// The bench plot: latency and videos/s against frames per video, drawn on a Canvas
// (render/canvas.hpp) as SVG or PNG.
#include <algorithm>
#include <cmath>

#include "bench/bench.hpp"
#include "render/canvas.hpp"
#include "stam/error.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

const Rgb kInk{40, 40, 40}, kGrid{215, 215, 215}, kLatency{31, 119, 180}, kRate{230, 120, 20};

// A "nice" axis top (1, 2 or 5 x 10^k) at or above v.
double nice_ceiling(double v) {
  if (v <= 0) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= v) return m * p;
  return 10 * p;
}

constexpr int kWidth = 820, kHeight = 500;
constexpr double kLeft = 80, kRight = 740, kTop = 60, kBottom = 430;

void draw(const BenchReport& r, Canvas& c) {
  const auto& rows = r.rows;
  double lo = std::log2(double(rows.front().frames)), hi = lo, max_ms = 0, max_rate = 0;
  for (const auto& b : rows) {
    lo = std::min(lo, std::log2(double(b.frames)));
    hi = std::max(hi, std::log2(double(b.frames)));
    max_ms = std::max(max_ms, b.median_ms);
    max_rate = std::max(max_rate, b.videos_per_s);
  }
  const double top_ms = nice_ceiling(max_ms * 1.15), top_rate = nice_ceiling(max_rate * 1.15);
  auto x_of = [&](int64_t f) {
    return hi == lo ? (kLeft + kRight) / 2
                    : kLeft + 60 + (std::log2(double(f)) - lo) / (hi - lo) * (kRight - kLeft - 120);
  };
  auto y_ms = [&](double v) { return kBottom - v / top_ms * (kBottom - kTop); };
  auto y_rate = [&](double v) { return kBottom - v / top_rate * (kBottom - kTop); };

  const SystemInfo& s = r.system;
  c.text(kLeft, 28, "STAM latency vs frames per video: " + s.cpu, kInk, 16);
  c.text(kLeft, 46,
         s.device + " " + s.precision + ", " + std::to_string(s.threads) + " threads, batch " +
             std::to_string(rows.front().batch) + "; labels: median latency, published K400 top-1",
         kInk, 12);
  for (int i = 0; i <= 5; ++i) {  // grid and both y axes' ticks
    const double y = kBottom - i / 5.0 * (kBottom - kTop);
    c.line(kLeft, y, kRight, y, kGrid, 1);
    c.text(kLeft - 8, y + 4, format_number("%.0f", top_ms * i / 5.0), kLatency, 12, Align::kRight);
    c.text(kRight + 8, y + 4, format_number("%.3g", top_rate * i / 5.0), kRate, 12);
  }
  c.line(kLeft, kTop, kLeft, kBottom, kInk, 1);
  c.line(kRight, kTop, kRight, kBottom, kInk, 1);
  c.line(kLeft, kBottom, kRight, kBottom, kInk, 1);
  c.text(kLeft - 8, kTop - 8, "latency ms", kLatency, 12, Align::kRight);
  c.text(kRight + 8, kTop - 8, "videos/s", kRate, 12);
  c.text((kLeft + kRight) / 2, kBottom + 44, "frames per video", kInk, 13, Align::kCenter);

  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& b = rows[i];
    const double x = x_of(b.frames);
    c.text(x, kBottom + 20, std::to_string(b.frames), kInk, 12, Align::kCenter);
    if (i > 0) {
      const auto& a = rows[i - 1];
      c.line(x_of(a.frames), y_ms(a.median_ms), x, y_ms(b.median_ms), kLatency, 2.5);
      c.line(x_of(a.frames), y_rate(a.videos_per_s), x, y_rate(b.videos_per_s), kRate, 2, true);
    }
    c.dot(x, y_ms(b.median_ms), 5, kLatency);
    c.dot(x, y_rate(b.videos_per_s), 4, kRate);
  }
  for (const auto& b : rows) {  // the labels last, over every line
    const double x = x_of(b.frames);
    c.text(x, y_ms(b.median_ms) - 12, format_number("%.0f ms", b.median_ms), kLatency, 12,
           Align::kCenter);
    if (b.published_top1)
      c.text(x, y_ms(b.median_ms) - 27, format_number("%.2f%% top-1", *b.published_top1), kInk, 12,
             Align::kCenter);
  }
}

}  // namespace

void write_bench_plot(const BenchReport& r, const std::string& path) {
  check_plot_name(path);
  if (r.rows.empty()) throw UsageError("--plot: no results to plot");
  write_plot(path, kWidth, kHeight, [&](Canvas& c) { draw(r, c); });
}

}  // namespace stam
