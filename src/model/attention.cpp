#include "model/attention.hpp"

#include <torch/version.h>

#include <cmath>

#if STAM_ONEDNN
#include "onednn.hpp"
#endif

namespace stam {

namespace {

double scale_for(int64_t head_dim) {
  return 1.0 / std::sqrt(static_cast<double>(head_dim));
}

// (B, L, 3*D) -> (3, B, heads, L, D/heads): q, k and v, each split into heads, as views.
torch::Tensor split_heads(const torch::Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), l = qkv.size(1), d = qkv.size(2) / 3;
  return qkv.view({b, l, 3, heads, d / heads}).permute({2, 0, 3, 1, 4});
}

#if STAM_ONEDNN
using dnnl::memory;

// Three oneDNN primitives, run one item at a time over all its heads: the scores of one item
// (heads x L x L, fp32) are the only memory allocated, whatever the batch, with (in bf16) one
// item's q, k and v. scores = scale * q k^T, in fp32 whatever qkv's dtype; probabilities =
// softmax(scores), in fp32, stored in qkv's dtype (in place for fp32); out = probabilities v,
// each head written straight into its columns of `out`.
// In fp32, q, k and v are read where the projection wrote them (strided views of qkv). In bf16
// they are first copied head by head into one dense buffer: on strided operands oneDNN 2.6 runs
// its generic gemm, which with the score scale took 1.24 ms an item where the AMX kernels it
// picks for dense ones take 0.10 (12 heads, L = 197), and attention was half of a bf16 block.
void self_attention_onednn(torch::Tensor& out, const torch::Tensor& qkv_in, int64_t heads) {
  const torch::Tensor qkv = qkv_in.contiguous();
  const memory::dim b = qkv.size(0), l = qkv.size(1), d = qkv.size(2) / 3, h = heads, hd = d / h;
  const auto dt = *onednn::data_type(qkv.scalar_type());
  const bool dense = dt != memory::data_type::f32;
  auto scores = torch::empty({h, l, l}, qkv.options().dtype(torch::kFloat));
  auto probs = dense ? torch::empty({h, l, l}, qkv.options()) : scores;
  auto heads_qkv = dense ? torch::empty({3, h, l, hd}, qkv.options()) : torch::Tensor();

  // q, k and v of one item, each as (1, H, L, hd): at `at` in qkv (row stride 3d), or at
  // 0, H*L*hd and 2*H*L*hd in the dense buffer. k^T is k's memory read transposed.
  const memory::dims row =
      dense ? memory::dims{h * l * hd, l * hd, hd, 1} : memory::dims{l * 3 * d, hd, 3 * d, 1};
  const memory::dims row_t = {row[0], row[1], row[3], row[2]};
  const memory::dim q_at = 0, k_at = dense ? h * l * hd : d, v_at = 2 * k_at;
  const memory::desc q_md({1, h, l, hd}, dt, row), v_md = q_md;
  const memory::desc kt_md({1, h, hd, l}, dt, row_t);
  const memory::desc s_md({1, h, l, l}, memory::data_type::f32, memory::format_tag::abcd);
  const memory::desc p_md({1, h, l, l}, dt, memory::format_tag::abcd);
  const memory::desc o_md({1, h, l, hd}, dt, {l * d, hd, d, 1});  // (1, L, H*hd) output
  const std::string shape = std::to_string(h) + "x" + std::to_string(l) + "x" + std::to_string(hd) +
                            " dt" + std::to_string(int(dt));

  auto& qk = onednn::cached("attention qk " + shape, [&] {
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {static_cast<float>(scale_for(hd))});
    return dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md, kt_md, s_md), attr,
                                                     onednn::engine()));
  });
  auto& softmax = onednn::cached("attention softmax " + shape, [&] {
    return dnnl::softmax_v2_forward(dnnl::softmax_v2_forward::primitive_desc(
        dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_inference,
                                       dnnl::algorithm::softmax_accurate, s_md, p_md, 3),
        onednn::engine()));
  });
  auto& pv = onednn::cached("attention pv " + shape, [&] {
    return dnnl::matmul(
        dnnl::matmul::primitive_desc(dnnl::matmul::desc(p_md, v_md, o_md), onednn::engine()));
  });

  auto& stream = onednn::stream();
  const auto s_mem = onednn::wrap(s_md, scores), p_mem = onednn::wrap(p_md, probs);
  for (memory::dim i = 0; i < b; ++i) {
    const torch::Tensor& src = dense ? heads_qkv : qkv;
    const int64_t in_at = dense ? 0 : i * l * 3 * d, out_at = i * l * d;
    if (dense) heads_qkv.copy_(qkv[i].view({l, 3, h, hd}).permute({1, 2, 0, 3}));
    qk.execute(stream, {{DNNL_ARG_SRC, onednn::wrap(q_md, src, in_at + q_at)},
                        {DNNL_ARG_WEIGHTS, onednn::wrap(kt_md, src, in_at + k_at)},
                        {DNNL_ARG_DST, s_mem}});
    softmax.execute(stream, {{DNNL_ARG_SRC, s_mem}, {DNNL_ARG_DST, p_mem}});
    pv.execute(stream, {{DNNL_ARG_SRC, p_mem},
                        {DNNL_ARG_WEIGHTS, onednn::wrap(v_md, src, in_at + v_at)},
                        {DNNL_ARG_DST, onednn::wrap(o_md, out, out_at)}});
    if (dense) stream.wait();  // the buffer is refilled for the next item
  }
  stream.wait();
}
#endif  // STAM_ONEDNN

}  // namespace

torch::Tensor self_attention_reference(const torch::Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), l = qkv.size(1), d = qkv.size(2) / 3;
  const auto t = split_heads(qkv, heads);
  // The scores and the softmax are fp32 whatever qkv's dtype: a bf16 score near 50 is rounded
  // by up to 0.125, which the exponential turns into 13% in its probability. q is scaled before
  // the product, not the scores after it, so that q.k past fp32's range but within it once
  // scaled stays finite. For head dim 64 the scale is 1/8, a power of two: the scores are the
  // same bits either way.
  const auto q = t[0].to(torch::kFloat) * scale_for(d / heads);
  const auto probs =
      torch::matmul(q, t[1].to(torch::kFloat).transpose(-2, -1)).softmax(-1).to(qkv.scalar_type());
  return torch::matmul(probs, t[2]).transpose(1, 2).reshape({b, l, d});
}

#if TORCH_VERSION_MAJOR >= 2
namespace {
// LibTorch 2's fused attention (flash or memory-efficient kernels on CUDA): the scores never
// reach memory, and the softmax runs in fp32 inside the kernel. Its default scale is ours.
torch::Tensor self_attention_fused(const torch::Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), l = qkv.size(1), d = qkv.size(2) / 3;
  const auto t = split_heads(qkv, heads);
  return at::scaled_dot_product_attention(t[0], t[1], t[2]).transpose(1, 2).reshape({b, l, d});
}
}  // namespace
#endif

void self_attention_out(torch::Tensor& out, const torch::Tensor& qkv, int64_t heads) {
#if STAM_ONEDNN
  if (qkv.device().is_cpu() && onednn::data_type(qkv.scalar_type()) &&
      out.scalar_type() == qkv.scalar_type() && out.is_contiguous())
    return self_attention_onednn(out, qkv, heads);
#endif
#if TORCH_VERSION_MAJOR >= 2
  if (qkv.is_cuda()) {
    out.copy_(self_attention_fused(qkv, heads));
    return;
  }
#endif
  out.copy_(self_attention_reference(qkv, heads));
}

torch::Tensor self_attention(const torch::Tensor& qkv, int64_t heads) {
  auto out = torch::empty({qkv.size(0), qkv.size(1), qkv.size(2) / 3}, qkv.options());
  self_attention_out(out, qkv, heads);
  return out;
}

}  // namespace stam
