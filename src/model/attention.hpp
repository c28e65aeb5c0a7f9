#pragma once
// Multi-head scaled dot-product self-attention, the one kernel STAM's model code calls that
// LibTorch 1.13 does not provide fused (LibTorch 2 does, and CUDA uses it).
#include <torch/types.h>

namespace stam {

// qkv: (B, L, 3*D), each token's q|k|v projections side by side, each split into `heads` heads
// of D/heads. Returns (B, L, D): softmax(q k^T / sqrt(D/heads)) v per item and head, heads
// concatenated as the reference's transpose + reshape does.
//
// On CPU (fp32, bf16) this is three oneDNN primitives over all heads of one item at a time,
// reading q, k and v in place and writing each head into its output columns: no permuted copies,
// and only one item's scores in memory. On CUDA with LibTorch 2 it is LibTorch's fused
// scaled_dot_product_attention. Elsewhere (CUDA with LibTorch 1, fp16 on CPU, a build without
// oneDNN) it composes LibTorch operators, with the scores and softmax in fp32.
torch::Tensor self_attention(const torch::Tensor& qkv, int64_t heads);
// The same, written into `out` ((B, L, D)): for callers that reuse their memory.
void self_attention_out(torch::Tensor& out, const torch::Tensor& qkv, int64_t heads);

// The composed-operator version on any device and dtype (also the reference for the tests).
torch::Tensor self_attention_reference(const torch::Tensor& qkv, int64_t heads);

}  // namespace stam
