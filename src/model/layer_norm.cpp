#include "model/layer_norm.hpp"

#if STAM_ONEDNN
#include <spdlog/fmt/fmt.h>

#include "onednn.hpp"
#endif

namespace stam {

namespace {

#if STAM_ONEDNN
using dnnl::memory;

// Parameters of any other shape or dtype go to LibTorch, which says what is wrong.
bool onednn_normalizes(const torch::Tensor& x, const torch::Tensor& weight,
                       const torch::Tensor& bias) {
  return x.device().is_cpu() && x.scalar_type() == torch::kBFloat16 && x.dim() >= 1 &&
         x.numel() > 0 && weight.scalar_type() == torch::kFloat &&
         bias.scalar_type() == torch::kFloat && weight.numel() == x.size(-1) &&
         bias.numel() == x.size(-1);
}

torch::Tensor onednn_layer_norm(const torch::Tensor& x, const torch::Tensor& weight,
                                const torch::Tensor& bias, double eps) {
  const auto src = x.contiguous();
  const memory::dim d = src.size(-1), rows = src.numel() / d;
  auto dst = torch::empty_like(src);
  const memory::desc data_md({rows, d}, memory::data_type::bf16, memory::format_tag::ab);
  const memory::desc param_md({d}, memory::data_type::f32, memory::format_tag::a);
  const auto key = fmt::format("layer_norm {}x{} eps {}", rows, d, eps);  // eps to the bit
  auto& prim = onednn::cached(key, [&] {
    using flags = dnnl::normalization_flags;
    return dnnl::layer_normalization_forward(dnnl::layer_normalization_forward::primitive_desc(
        dnnl::layer_normalization_forward::desc(dnnl::prop_kind::forward_inference, data_md,
                                                static_cast<float>(eps),
                                                flags::use_scale | flags::use_shift),
        onednn::engine()));
  });
  const auto w = weight.contiguous(), b = bias.contiguous();
  prim.execute(onednn::stream(), {{DNNL_ARG_SRC, onednn::wrap(data_md, src)},
                                  {DNNL_ARG_DST, onednn::wrap(data_md, dst)},
                                  {DNNL_ARG_SCALE, onednn::wrap(param_md, w)},
                                  {DNNL_ARG_SHIFT, onednn::wrap(param_md, b)}});
  onednn::stream().wait();
  return dst;
}
#endif  // STAM_ONEDNN

}  // namespace

torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias, double eps) {
#if STAM_ONEDNN
  if (onednn_normalizes(x, weight, bias)) return onednn_layer_norm(x, weight, bias, eps);
#endif
  return layer_norm_in_param_dtype(x, weight, bias, eps).to(x.scalar_type());
}

torch::Tensor layer_norm_in_param_dtype(const torch::Tensor& x, const torch::Tensor& weight,
                                        const torch::Tensor& bias, double eps) {
  return torch::layer_norm(x.to(weight.scalar_type()), {weight.size(0)}, weight, bias, eps);
}

}  // namespace stam
