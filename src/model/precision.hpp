#pragma once
// Numeric precision: names, dtypes, what a device can run, and the choice `auto` makes (on CPU,
// measured on the model's own product shape), made once before a model is built.
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "stam/stam.hpp"

namespace stam {

struct StamConfig;

c10::ScalarType scalar_type(Precision p);

// Throws DeviceError when `p` cannot run on `device` with this LibTorch build.
void check_precision(const torch::Device& device, Precision p);

struct PrecisionChoice {
  Precision precision = Precision::kFp32;
  // Why, said after the precision, e.g. "auto: bf16 measured 2.60x the fp32 rate (...)".
  std::string reason;
  double fp32_gflops = 0, bf16_gflops = 0;  // the rates measured, when measured
};

// The precision a run uses. An explicit one is kept as it is: callers check_precision() it
// first, before they load anything, so the check (on CUDA a bf16 product) is not repeated here.
// kAuto is fp16 on CUDA. On CPU it is fp32 when the CPU has no bf16 instructions (bf16 is then
// emulated, always slower), and otherwise the faster of fp32 and bf16 (see faster_precision) at
// the model's first MLP product for one frame, on one thread, measured now (~0.1 s): native bf16
// is 2-5x faster on some CPUs and slower on others.
PrecisionChoice choose_precision(const torch::Device& device, Precision requested,
                                 const StamConfig& config);
// The CPU measurement alone, whatever the CPU's instructions: the two precisions take turns, so
// that a disturbance (another process on the cores) slows both alike, and each keeps its best.
PrecisionChoice measure_cpu_precision(int64_t m, int64_t k, int64_t n);
// bf16 when its measured rate is at least kBf16Margin times fp32's, else fp32. bf16 rounds the
// products, so it has to be clearly faster; and with rates that close (1.1x, say) the choice
// would flip between runs of one command on a busy machine, and their results with it.
constexpr double kBf16Margin = 1.2;
Precision faster_precision(double fp32_gflops, double bf16_gflops);

}  // namespace stam
