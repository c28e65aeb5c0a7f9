// PIL-exact BILINEAR resizing, torchvision Resize(int) / CenterCrop arithmetic.
//
// The resampling reproduces Pillow's own BILINEAR resize (libImaging/Resample.c) as Pillow 9.4,
// Debian 12's, computes it, bit for bit (the tests compare with frames Pillow resized:
// tests/fixtures/pre_*, from scripts/make_preprocess_fixtures.py): per-axis triangle filter
// widened by the scale when shrinking, normalised double weights turned into 22-bit fixed point,
// accumulation from a 2^21 bias, horizontal pass first with 8-bit rounding in between.
//
// Every output pixel of a pass depends only on its own window of input samples, so computing
// only a sub-rectangle of the output (the part a centre crop keeps) gives the same bits as
// resizing everything and cropping afterwards. preprocess_frame relies on that.
#include "preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace stam {
namespace {

constexpr int kPrecisionBits = 22;  // fractional bits of the fixed-point weights
constexpr int32_t kRoundBias = 1 << (kPrecisionBits - 1);

// Fixed-point weights of one resampling pass from `in` to `out` samples along one axis.
struct PassCoeffs {
  int ksize = 0;                 // stride of `weights` per output sample
  std::vector<int> first;        // first input sample read by each output sample
  std::vector<int> count;        // how many input samples it reads
  std::vector<int32_t> weights;  // out * ksize, zero-padded past `count`
};

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

std::shared_ptr<const PassCoeffs> compute_coeffs(int in, int out) {
  auto c = std::make_shared<PassCoeffs>();
  const double scale = static_cast<double>(in) / out;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // bilinear support is 1, widened when shrinking
  // Multiplying by the reciprocal (rather than dividing by filterscale) is what Pillow does; the
  // two can differ in the last bit of a double, which may flip a rounded weight.
  const double inv_filterscale = 1.0 / filterscale;
  c->ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c->first.resize(out);
  c->count.resize(out);
  c->weights.assign(static_cast<size_t>(out) * c->ksize, 0);
  std::vector<double> w(c->ksize);
  for (int o = 0; o < out; ++o) {
    const double center = (o + 0.5) * scale;
    // C-style int() truncation as Pillow does; a negative start is clamped to 0 either way.
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in);
    const int n = std::min(hi - lo, c->ksize);
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      w[i] = triangle((static_cast<double>(i + lo) - center + 0.5) * inv_filterscale);
      sum += w[i];
    }
    int32_t* k = &c->weights[static_cast<size_t>(o) * c->ksize];
    for (int i = 0; i < n; ++i) {
      const double wi = sum != 0.0 ? w[i] / sum : w[i];
      // Weights are never negative for the triangle filter; round half away from zero.
      k[i] = static_cast<int32_t>(wi * (1 << kPrecisionBits) + 0.5);
    }
    c->first[o] = lo;
    c->count[o] = n;
  }
  return c;
}

// Weights depend only on (in, out); every frame of a video reuses them. The cache is per thread
// so decode workers never contend or race; it is cleared when it grows past a few sizes (a batch
// of videos with many different resolutions), and entries are shared_ptrs so clearing never
// invalidates coefficients still in use by the caller.
std::shared_ptr<const PassCoeffs> coeffs_for(int in, int out) {
  thread_local std::map<std::pair<int, int>, std::shared_ptr<const PassCoeffs>> cache;
  const auto key = std::make_pair(in, out);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 32) cache.clear();
  auto c = compute_coeffs(in, out);
  cache.emplace(key, c);
  return c;
}

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

void check_rgb(const cv::Mat& rgb, const char* what) {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    throw std::invalid_argument(std::string(what) + ": expected a non-empty 8-bit 3-channel image");
  }
}

// Horizontal pass over rows [row0, row0 + dst.rows) of src, producing output columns
// [col0, col0 + dst.cols) of a resize to `hc` (src.cols -> full output width).
void horizontal_pass(const cv::Mat& src, int row0, int col0, const PassCoeffs& hc, cv::Mat& dst) {
  for (int y = 0; y < dst.rows; ++y) {
    const uint8_t* in = src.ptr<uint8_t>(row0 + y);
    uint8_t* out = dst.ptr<uint8_t>(y);
    for (int x = 0; x < dst.cols; ++x) {
      const int o = col0 + x;
      const int32_t* k = &hc.weights[static_cast<size_t>(o) * hc.ksize];
      const uint8_t* p = in + 3 * hc.first[o];
      int32_t a0 = kRoundBias, a1 = kRoundBias, a2 = kRoundBias;
      for (int i = 0; i < hc.count[o]; ++i, p += 3) {
        a0 += p[0] * k[i];
        a1 += p[1] * k[i];
        a2 += p[2] * k[i];
      }
      out[3 * x + 0] = clip8(a0);
      out[3 * x + 1] = clip8(a1);
      out[3 * x + 2] = clip8(a2);
    }
  }
}

// Vertical pass: output row y of dst is output row (row_out0 + y) of a resize described by `vc`;
// `src` holds the input rows starting at input row `src_row0`.
void vertical_pass(const cv::Mat& src, int src_row0, int row_out0, const PassCoeffs& vc,
                   cv::Mat& dst) {
  const int n = dst.cols * 3;
  std::vector<int32_t> acc(n);
  for (int y = 0; y < dst.rows; ++y) {
    const int o = row_out0 + y;
    const int32_t* k = &vc.weights[static_cast<size_t>(o) * vc.ksize];
    std::fill(acc.begin(), acc.end(), kRoundBias);
    // Row-at-a-time accumulation keeps the inner loop contiguous (vectorisable); the sum per
    // pixel is the same integer sum in a different order, so the result is identical.
    for (int i = 0; i < vc.count[o]; ++i) {
      const uint8_t* in = src.ptr<uint8_t>(vc.first[o] - src_row0 + i);
      const int32_t ki = k[i];
      for (int j = 0; j < n; ++j) acc[j] += in[j] * ki;
    }
    uint8_t* out = dst.ptr<uint8_t>(y);
    for (int j = 0; j < n; ++j) out[j] = clip8(acc[j]);
  }
}

// The pixels inside `roi` of PIL's resize of `src` to out_w x out_h. `roi` must lie inside the
// output image.
cv::Mat resize_region(const cv::Mat& src, int out_w, int out_h, const cv::Rect& roi) {
  const bool need_h = out_w != src.cols;
  const bool need_v = out_h != src.rows;
  if (!need_h && !need_v) return src(roi).clone();

  std::shared_ptr<const PassCoeffs> vc;
  int row0 = roi.y, row1 = roi.y + roi.height;  // input rows the vertical pass reads
  if (need_v) {
    vc = coeffs_for(src.rows, out_h);
    row0 = src.rows;
    row1 = 0;
    for (int o = roi.y; o < roi.y + roi.height; ++o) {
      row0 = std::min(row0, vc->first[o]);
      row1 = std::max(row1, vc->first[o] + vc->count[o]);
    }
  }

  cv::Mat mid;  // horizontal result (or the untouched input rows), rows row0..row1-1
  if (need_h) {
    mid.create(row1 - row0, roi.width, CV_8UC3);
    horizontal_pass(src, row0, roi.x, *coeffs_for(src.cols, out_w), mid);
  } else {
    mid = src(cv::Rect(roi.x, row0, roi.width, row1 - row0));
  }
  if (!need_v) return need_h ? mid : mid.clone();

  cv::Mat out(roi.height, roi.width, CV_8UC3);
  vertical_pass(mid, row0, roi.y, *vc, out);
  return out;
}

// torchvision's output size for Resize(int): short side -> size, long side int(size*long/short).
// Integer division equals Python's int() of the float quotient: the exact quotient is at least
// 1/short away from the next integer, far more than a double's rounding error.
cv::Size short_side_size(int w, int h, int size) {
  if (w <= h) return {size, static_cast<int>(static_cast<int64_t>(size) * h / w)};
  return {static_cast<int>(static_cast<int64_t>(size) * w / h), size};
}

// int(round(diff / 2.0)) with Python's round-half-to-even; diff >= 0.
int crop_offset(int diff) {
  const int half = diff / 2;
  if (diff % 2 == 0) return half;
  return half % 2 == 0 ? half : half + 1;  // diff/2 = half + 0.5: go to the even neighbour
}

}  // namespace

cv::Mat resize_bilinear_pil(const cv::Mat& rgb, int width, int height) {
  check_rgb(rgb, "resize_bilinear_pil");
  if (width <= 0 || height <= 0) {
    throw std::invalid_argument("resize_bilinear_pil: target size must be positive");
  }
  return resize_region(rgb, width, height, cv::Rect(0, 0, width, height));
}

cv::Mat resize_short_side(const cv::Mat& rgb, int size) {
  check_rgb(rgb, "resize_short_side");
  if (size <= 0) throw std::invalid_argument("resize_short_side: size must be positive");
  const cv::Size s = short_side_size(rgb.cols, rgb.rows, size);
  if (s.width == rgb.cols && s.height == rgb.rows) return rgb.clone();
  return resize_bilinear_pil(rgb, s.width, s.height);
}

cv::Mat center_crop(const cv::Mat& rgb, int size) {
  check_rgb(rgb, "center_crop");
  if (size <= 0) throw std::invalid_argument("center_crop: size must be positive");
  cv::Mat img = rgb;
  if (img.cols < size || img.rows < size) {
    // torchvision pads left/top by diff // 2 and right/bottom by (diff + 1) // 2.
    const int dw = std::max(size - img.cols, 0), dh = std::max(size - img.rows, 0);
    cv::copyMakeBorder(rgb, img, dh / 2, (dh + 1) / 2, dw / 2, (dw + 1) / 2, cv::BORDER_CONSTANT,
                       cv::Scalar::all(0));
  }
  const int top = crop_offset(img.rows - size), left = crop_offset(img.cols - size);
  return img(cv::Rect(left, top, size, size)).clone();
}

int resize_size_for_crop(int crop) {
  // int(crop / 0.875) in Python. crop / 0.875 == crop * 8 / 7 exactly in the reals, and the
  // double quotient is never rounded across an integer for crop < 2^40, so integer division
  // reproduces it.
  return static_cast<int>(static_cast<int64_t>(crop) * 8 / 7);
}

cv::Mat preprocess_frame(const cv::Mat& rgb, int crop) {
  check_rgb(rgb, "preprocess_frame");
  if (crop <= 0) throw std::invalid_argument("preprocess_frame: crop must be positive");
  const cv::Size s = short_side_size(rgb.cols, rgb.rows, resize_size_for_crop(crop));
  if (s.width == rgb.cols && s.height == rgb.rows) return center_crop(rgb, crop);
  if (s.width < crop || s.height < crop) {
    return center_crop(resize_bilinear_pil(rgb, s.width, s.height), crop);  // needs padding
  }
  // Resize only the crop window: same bits as resizing everything, 20-80x less work on HD input.
  const cv::Rect roi(crop_offset(s.width - crop), crop_offset(s.height - crop), crop, crop);
  return resize_region(rgb, s.width, s.height, roi);
}

}  // namespace stam
