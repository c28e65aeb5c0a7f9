#pragma once
// The model's matrix products, each with its epilogue fused where the backend allows.
//
// On CPU (fp32 and bf16) they run on oneDNN's matmul, which picks its kernels from the CPU's
// features (AVX2, AVX-512, AVX512_BF16, AMX) at run time. The system BLAS that LibTorch uses
// otherwise picks them from the CPU model and falls back to SSE3 on models it does not know.
// Elsewhere (CUDA, other dtypes) they compose LibTorch operators.
#include <torch/types.h>

#include <memory>

namespace stam {

enum class Activation { kNone, kGelu };

// A weight copied into the layout the CPU product reads fastest (oneDNN's blocked one, the
// layout its kernels otherwise copy the plain weight into on every call), for a caller that owns
// the weight and calls the product with it again and again. Made on first use and again whenever
// the weight is written, replaced or moved. Only bf16 products on oneDNN use it (about 8% of a
// bf16 forward, for a second copy of the weights); elsewhere it stays empty. One caller at a time,
// as for the model that owns it.
class PackedWeight {
 public:
  struct State;  // private to linear.cpp
  std::shared_ptr<State> state;
};

// act(x W^T + b) for x (..., in), W (out, in), b (out): (..., out). GELU is the exact (erf) one.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     Activation act = Activation::kNone);

// The same, written into dst (contiguous, (..., out)): for callers that reuse their memory.
void linear_out(torch::Tensor& dst, const torch::Tensor& x, const torch::Tensor& weight,
                const torch::Tensor& bias, Activation act = Activation::kNone,
                PackedWeight* packed = nullptr);
// residual += x W^T + b, in place (residual contiguous, (..., out)).
void linear_add_(torch::Tensor& residual, const torch::Tensor& x, const torch::Tensor& weight,
                 const torch::Tensor& bias, PackedWeight* packed = nullptr);

// Which library computes linear() for tensors of this device and dtype, e.g. "oneDNN 2.6.3
// (brg:avx512_core)" or "LibTorch (addmm)".
std::string linear_backend(const torch::Device& device, c10::ScalarType dtype);

// One m x k by k x n product through linear() (`blas`: through LibTorch's addmm instead) on
// operands and an output made once, to be timed call by call. A fresh output per call would time
// the allocator too: glibc hands a freed block above its trim threshold back to the OS, so every
// call faulted the output's pages in again (half the product's rate on a 2-core Zen 5).
class GemmProbe {
 public:
  GemmProbe(int64_t m, int64_t k, int64_t n, const torch::Device& device, c10::ScalarType dtype,
            bool blas);
  // Runs the product `calls` times and returns the rate in GFLOP/s over them (the first call
  // includes kernel JIT and page faults: a warm-up).
  double run(int calls = 1) const;
  double gflop() const;  // of one call

 private:
  torch::Tensor a_, w_, b_;
  mutable torch::Tensor y_;
  mutable PackedWeight packed_;  // as the model's layers read their weights
  bool blas_;
};

}  // namespace stam
