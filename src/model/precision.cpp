#include "model/precision.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "cpu.hpp"
#include "device.hpp"
#include "model/linear.hpp"
#include "model/model.hpp"
#include "stam/error.hpp"

namespace stam {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "fp16") return Precision::kFp16;
  if (name == "auto") return Precision::kAuto;
  throw UsageError("unknown precision '" + name + "' (expected auto, fp32, bf16 or fp16)");
}

std::string to_string(Precision p) {
  switch (p) {
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
    case Precision::kAuto:
      return "auto";
    case Precision::kFp32:
      break;
  }
  return "fp32";
}

c10::ScalarType scalar_type(Precision p) {
  switch (p) {
    case Precision::kBf16:
      return torch::kBFloat16;
    case Precision::kFp16:
      return torch::kHalf;
    case Precision::kAuto:
      throw std::logic_error("scalar_type(Precision::kAuto): choose_precision() first");
    case Precision::kFp32:
      break;
  }
  return torch::kFloat;
}

void check_precision(const torch::Device& device, Precision p) {
  // LibTorch's CPU kernels have no half-precision matrix multiply; bf16 has one.
  if (p == Precision::kFp16 && device.is_cpu())
    throw DeviceError("--precision fp16 needs a CUDA device; on CPU use bf16 or fp32");
  // GPUs before Ampere may have no bf16 matrix multiply: ask this one for a tiny product.
  if (p == Precision::kBf16 && device.is_cuda()) {
    try {
      const auto x =
          torch::ones({8, 8}, torch::TensorOptions().device(device).dtype(torch::kBFloat16));
      (void)x.mm(x).sum().item<float>();
    } catch (const c10::Error& e) {
      throw DeviceError("--precision bf16: " + device.str() + " cannot multiply bf16 matrices (" +
                        e.what_without_backtrace() + "); use --precision fp16 or fp32");
    }
  }
}

Precision faster_precision(double fp32_gflops, double bf16_gflops) {
  return bf16_gflops >= kBf16Margin * fp32_gflops ? Precision::kBf16 : Precision::kFp32;
}

PrecisionChoice measure_cpu_precision(int64_t m, int64_t k, int64_t n) {
  // On one thread: with two, a thread of ours waiting for its core (another process's work)
  // holds up the whole product, and the rates came out in any order. Each round runs a product
  // for at least 5 ms, so a small model's product is not timed on scheduling noise.
  const ScopedThreads one(1);
  const torch::Device cpu(torch::kCPU);
  const GemmProbe fp32(m, k, n, cpu, torch::kFloat, false),
      bf16(m, k, n, cpu, torch::kBFloat16, false);
  const auto calls = [](const GemmProbe& p) {
    p.run();  // warm-up
    return static_cast<int>(std::clamp(std::ceil(5e-3 * p.run() / p.gflop()), 1.0, 1000.0));
  };
  const int fp32_calls = calls(fp32), bf16_calls = calls(bf16);
  PrecisionChoice c;
  for (int round = 0; round < 5; ++round) {
    c.fp32_gflops = std::max(c.fp32_gflops, fp32.run(fp32_calls));
    c.bf16_gflops = std::max(c.bf16_gflops, bf16.run(bf16_calls));
  }
  c.precision = faster_precision(c.fp32_gflops, c.bf16_gflops);
  const double ratio = c.bf16_gflops / c.fp32_gflops;
  c.reason = fmt::format(
      "auto: bf16 measured {:.2f}x the fp32 rate ({:.0f} against {:.0f} GFLOP/s on one "
      "thread){}",
      ratio, c.bf16_gflops, c.fp32_gflops,
      c.precision == Precision::kFp32 && ratio > 1
          ? fmt::format(", under the {:.1f}x bf16 must gain", kBf16Margin)
          : "");
  return c;
}

PrecisionChoice choose_precision(const torch::Device& device, Precision requested,
                                 const StamConfig& config) {
  if (requested != Precision::kAuto) return {requested, "requested", 0, 0};
  if (!device.is_cpu()) return {Precision::kFp16, "auto: on " + device.str(), 0, 0};
  if (!cpu_info().has("avx512_bf16") && !cpu_info().has("amx_bf16"))
    return {Precision::kFp32, "auto: this CPU has no bf16 instructions", 0, 0};
  const int64_t grid = config.image_size / config.patch_size;
  return measure_cpu_precision(grid * grid + 1, config.embed_dim, config.mlp_hidden);
}

}  // namespace stam
