// The two canvases behind write_plot: SVG text, and an OpenCV image saved as PNG.
#include "render/canvas.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "stam/error.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

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
  void polyline(const std::vector<Point>& points, Rgb c, double width) override {
    out_ << "<polyline points=\"";
    for (size_t i = 0; i < points.size(); ++i)
      out_ << (i ? " " : "") << points[i].x << ',' << points[i].y;
    out_ << "\" fill=\"none\" stroke=\"" << color(c) << "\" stroke-width=\"" << width
         << "\" stroke-linejoin=\"round\"/>\n";
  }
  void rect(double x, double y, double w, double h, Rgb c) override {
    out_ << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"" << h
         << "\" fill=\"" << color(c) << "\"/>\n";
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
  void polyline(const std::vector<Point>& points, Rgb c, double width) override {
    std::vector<cv::Point> pts;
    for (const Point& p : points) pts.push_back(pt(p.x, p.y));
    cv::polylines(mat_, pts, false, bgr(c), std::max(1, int(std::lround(width))), cv::LINE_AA);
  }
  void rect(double x, double y, double w, double h, Rgb c) override {
    cv::rectangle(mat_, pt(x, y), pt(x + w, y + h), bgr(c), cv::FILLED);
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

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

bool check_plot_name(const std::string& path, const std::string& flag) {
  const std::string lower = ascii_lower(path);
  const bool svg = ends_with(lower, ".svg");
  if (!svg && !ends_with(lower, ".png"))
    throw UsageError(flag + " " + path + ": the file name must end in .svg or .png");
  return svg;
}

void write_plot(const std::string& path, int width, int height,
                const std::function<void(Canvas&)>& draw, const std::string& flag) {
  const std::string cannot = flag + " " + path + ": cannot write the file";
  if (check_plot_name(path, flag)) {
    SvgCanvas canvas(width, height);
    draw(canvas);
    std::ofstream out(path, std::ios::binary);
    out << canvas.finish();
    if (!out.flush()) throw UsageError(cannot);
    return;
  }
  MatCanvas canvas(width, height);
  draw(canvas);
  bool ok = false;
  try {
    ok = cv::imwrite(path, canvas.mat());
  } catch (const cv::Exception&) {
  }
  if (!ok) throw UsageError(cannot);
}

}  // namespace stam
