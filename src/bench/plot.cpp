// The bench plot: latency and videos/s against frames per video, one layout drawn either as SVG
// text or, through OpenCV, as a PNG.
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "bench/bench.hpp"
#include "output.hpp"
#include "stam/error.hpp"

namespace stam {

namespace {

struct Rgb {
  int r, g, b;
};
const Rgb kInk{40, 40, 40}, kGrid{215, 215, 215}, kLatency{31, 119, 180}, kRate{230, 120, 20};
enum class Align { kLeft, kCenter, kRight };

class Canvas {
 public:
  virtual ~Canvas() = default;
  virtual void line(double x1, double y1, double x2, double y2, Rgb c, double width,
                    bool dashed = false) = 0;
  virtual void dot(double x, double y, double radius, Rgb c) = 0;
  // Text on a white halo, so that a line drawn earlier does not run through it.
  virtual void text(double x, double y, const std::string& s, Rgb c, double size,
                    Align align = Align::kLeft) = 0;
};

class SvgCanvas : public Canvas {
 public:
  SvgCanvas(int w, int h) {
    out_ << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
         << "\" viewBox=\"0 0 " << w << ' ' << h << "\" font-family=\"sans-serif\">\n"
         << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  }
  void line(double x1, double y1, double x2, double y2, Rgb c, double width, bool dashed) override {
    out_ << "<line x1=\"" << x1 << "\" y1=\"" << y1 << "\" x2=\"" << x2 << "\" y2=\"" << y2
         << "\" stroke=\"" << color(c) << "\" stroke-width=\"" << width << '"'
         << (dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>\n";
  }
  void dot(double x, double y, double radius, Rgb c) override {
    out_ << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"" << radius << "\" fill=\""
         << color(c) << "\"/>\n";
  }
  void text(double x, double y, const std::string& s, Rgb c, double size, Align align) override {
    const char* anchor = align == Align::kLeft     ? "start"
                         : align == Align::kCenter ? "middle"
                                                   : "end";
    out_ << "<text x=\"" << x << "\" y=\"" << y << "\" font-size=\"" << size << "\" fill=\""
         << color(c) << "\" text-anchor=\"" << anchor
         << "\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\">" << escape(s)
         << "</text>\n";
  }
  std::string finish() { return out_.str() + "</svg>\n"; }

 private:
  static std::string color(Rgb c) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
    return buf;
  }
  static std::string escape(const std::string& s) {
    std::string e;
    for (char ch : s)
      e += ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '&' ? "&amp;" : std::string(1, ch);
    return e;
  }
  std::ostringstream out_;
};

class MatCanvas : public Canvas {
 public:
  MatCanvas(int w, int h) : mat_(h, w, CV_8UC3, cv::Scalar(255, 255, 255)) {}
  void line(double x1, double y1, double x2, double y2, Rgb c, double width, bool dashed) override {
    const double len = std::hypot(x2 - x1, y2 - y1), step = dashed ? 10.0 : len;
    for (double t = 0; t < len; t += step) {  // dashes of 6 px every 10 px
      const double a = t / len, b = std::min(len, t + (dashed ? 6.0 : len)) / len;
      cv::line(mat_, pt(x1 + a * (x2 - x1), y1 + a * (y2 - y1)),
               pt(x1 + b * (x2 - x1), y1 + b * (y2 - y1)), bgr(c),
               std::max(1, int(std::lround(width))), cv::LINE_AA);
    }
  }
  void dot(double x, double y, double radius, Rgb c) override {
    cv::circle(mat_, pt(x, y), int(std::lround(radius)), bgr(c), cv::FILLED, cv::LINE_AA);
  }
  void text(double x, double y, const std::string& s, Rgb c, double size, Align align) override {
    const double scale = size / 30.0;
    int base = 0;
    const cv::Size box = cv::getTextSize(s, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &base);
    const double dx = align == Align::kLeft     ? 0
                      : align == Align::kCenter ? box.width / 2.0
                                                : box.width;
    cv::putText(mat_, s, pt(x - dx, y), cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar::all(255), 4,
                cv::LINE_AA);
    cv::putText(mat_, s, pt(x - dx, y), cv::FONT_HERSHEY_SIMPLEX, scale, bgr(c), 1, cv::LINE_AA);
  }
  const cv::Mat& mat() const { return mat_; }

 private:
  static cv::Point pt(double x, double y) { return {int(std::lround(x)), int(std::lround(y))}; }
  static cv::Scalar bgr(Rgb c) { return cv::Scalar(c.b, c.g, c.r); }
  cv::Mat mat_;
};

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

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

bool check_plot_name(const std::string& path) {
  const std::string lower = ascii_lower(path);
  const bool svg = ends_with(lower, ".svg");
  if (!svg && !ends_with(lower, ".png"))
    throw UsageError("--plot " + path + ": the file name must end in .svg or .png");
  return svg;
}

void write_bench_plot(const BenchReport& r, const std::string& path) {
  const bool svg = check_plot_name(path);
  if (r.rows.empty()) throw UsageError("--plot: no results to plot");
  if (svg) {
    SvgCanvas canvas(kWidth, kHeight);
    draw(r, canvas);
    std::ofstream out(path, std::ios::binary);
    out << canvas.finish();
    if (!out.flush()) throw UsageError("--plot " + path + ": cannot write the file");
    return;
  }
  MatCanvas canvas(kWidth, kHeight);
  draw(r, canvas);
  bool ok = false;
  try {
    ok = cv::imwrite(path, canvas.mat());
  } catch (const cv::Exception&) {
  }
  if (!ok) throw UsageError("--plot " + path + ": cannot write the file");
}

}  // namespace stam
