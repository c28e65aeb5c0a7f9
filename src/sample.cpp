#include "sample.hpp"

#include <algorithm>
#include <cmath>

#include "stam/error.hpp"

namespace stam {

Seek parse_seek(const std::string& name) {
  if (name == "exact") return Seek::kExact;
  if (name == "keyframe") return Seek::kKeyframe;
  throw UsageError("--seek: unknown value '" + name + "' (expected 'exact' or 'keyframe')");
}

std::string to_string(Seek seek) {
  return seek == Seek::kKeyframe ? "keyframe" : "exact";
}

Sampling parse_sampling(const std::string& name) {
  if (name == "uniform") return Sampling::kUniform;
  if (name == "reference") return Sampling::kReference;
  throw UsageError("--sampling: unknown value '" + name + "' (expected 'uniform' or 'reference')");
}

std::string to_string(Sampling s) {
  return s == Sampling::kUniform ? "uniform" : "reference";
}

namespace {

void check_counts(int64_t n, int64_t t) {
  if (n < 1) throw InputError("cannot sample from " + std::to_string(n) + " frames");
  if (t < 1) throw UsageError("number of frames to sample must be >= 1, got " + std::to_string(t));
}

}  // namespace

std::vector<int64_t> uniform_indices(int64_t n, int64_t t) {
  check_counts(n, t);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(t));
  for (int64_t i = 0; i < t; ++i) {
    // Integer arithmetic keeps the floor exact. (2i+1)*n fits easily: both factors are frame
    // counts, far below 2^31 in practice. The min() only matters when t is odd and n < t.
    const int64_t idx = (2 * i + 1) * n / (2 * t);
    out.push_back(std::min(n - 1, idx));
  }
  return out;
}

std::vector<int64_t> reference_indices(int64_t n, double fps, int64_t t) {
  check_counts(n, t);
  if (!(fps > 0.0) || !std::isfinite(fps)) {
    throw InputError("reference sampling needs a positive frame rate, got " + std::to_string(fps));
  }
  // torchvision computes `torch.arange(k, dtype=float32) * step`; PyTorch casts the Python
  // float `step` to float32 and multiplies in float32 (checked against torch 1.13: this differs
  // from double arithmetic for some rates, e.g. 120/11 fps). volatile stops any contraction or
  // excess precision from sneaking in.
  const double rate = static_cast<double>(t) / 10.0;
  const float step = static_cast<float>(fps / rate);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(t));
  for (int64_t k = 0; k < t; ++k) {
    volatile float pos = static_cast<float>(k) * step;
    const double floored = std::floor(static_cast<double>(pos));
    const int64_t idx = floored >= static_cast<double>(n) ? n - 1 : static_cast<int64_t>(floored);
    out.push_back(idx);
  }
  return out;
}

std::vector<int64_t> sample_indices(Sampling s, int64_t n, double fps, int64_t t) {
  return s == Sampling::kUniform ? uniform_indices(n, t) : reference_indices(n, fps, t);
}

}  // namespace stam
