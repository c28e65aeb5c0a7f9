#pragma once
// Plots drawn once through a Canvas and written either as SVG text or, through OpenCV, as a PNG
// (stam bench --plot, stam timeline --plot). Coordinates are pixels from the top left.
#include <functional>
#include <string>
#include <vector>

namespace stam {

struct Rgb {
  int r, g, b;
};
enum class Align { kLeft, kCenter, kRight };
struct Point {
  double x, y;
};

class Canvas {
 public:
  virtual ~Canvas() = default;
  virtual void line(double x1, double y1, double x2, double y2, Rgb c, double width,
                    bool dashed = false) = 0;
  // Open path through `points` (one SVG <polyline>).
  virtual void polyline(const std::vector<Point>& points, Rgb c, double width) = 0;
  // Filled rectangle.
  virtual void rect(double x, double y, double w, double h, Rgb c) = 0;
  virtual void dot(double x, double y, double radius, Rgb c) = 0;
  // Text on a white halo, so that a line drawn earlier does not run through it.
  virtual void text(double x, double y, const std::string& s, Rgb c, double size,
                    Align align = Align::kLeft) = 0;
};

// True for an .svg name, false for .png (any case); anything else is a UsageError naming
// `flag` and the path.
bool check_plot_name(const std::string& path, const std::string& flag = "--plot");

// Draws a `width` x `height` plot with `draw` on a white canvas and writes it to `path` in the
// format its extension names (check_plot_name). Throws UsageError naming the path when the
// extension is neither or the file cannot be written.
void write_plot(const std::string& path, int width, int height,
                const std::function<void(Canvas&)>& draw, const std::string& flag = "--plot");

}  // namespace stam
