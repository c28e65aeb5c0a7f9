#pragma once
// LayerNorm over the last dimension, with fp32 parameters whatever the input's dtype.
#include <torch/types.h>

namespace stam {

// (x - mean) / sqrt(var + eps) * weight + bias over x's last dimension, computed in fp32 and
// returned in x's dtype. weight and bias: (D), fp32 (or x's dtype).
//
// A bf16 x on CPU runs oneDNN's layer normalisation: it reads bf16, keeps the statistics in
// fp32 and writes bf16, the same single rounding as LibTorch's fp32 layer_norm followed by a
// cast, without the two fp32 copies of x that the cast costs. Everything else (fp32, which
// keeps LibTorch's arithmetic to the bit, CUDA, other dtypes) calls LibTorch's layer_norm.
torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias, double eps);

// The same through LibTorch's layer_norm in the parameters' dtype, returned in it (x is
// converted first when its dtype differs): for a result that must stay fp32.
torch::Tensor layer_norm_in_param_dtype(const torch::Tensor& x, const torch::Tensor& weight,
                                        const torch::Tensor& bias, double eps);

}  // namespace stam
