#include "model/linear.hpp"

#include <ATen/ops/addmm.h>
#include <ATen/ops/gelu.h>
#if STAM_ONEDNN
#include <dnnl_version.h>
#endif

#include <chrono>

#include "device.hpp"
#if STAM_ONEDNN
#include "onednn.hpp"
#endif

namespace stam {

namespace {

#if STAM_ONEDNN
using dnnl::memory;
using Tag = dnnl::memory::format_tag;

bool use_onednn(const torch::Tensor& x, const torch::Tensor& w) {
  return x.device().is_cpu() && onednn::data_type(x.scalar_type()) &&
         w.scalar_type() == x.scalar_type() && w.is_contiguous();
}

// dst (M x N) = act(x (M x K) W^T + b) [+ dst when accumulate], W stored (N x K) row-major,
// which oneDNN reads as a K x N matrix in "ba" order: no transposed copy.
void onednn_linear(const torch::Tensor& x2d, const torch::Tensor& w, const torch::Tensor& b,
                   torch::Tensor& dst, Activation act, bool accumulate) {
  const memory::dim m = x2d.size(0), k = x2d.size(1), n = w.size(0);
  const auto dt = *onednn::data_type(x2d.scalar_type());
  const auto bias = b.to(x2d.scalar_type());
  const memory::desc src_md({m, k}, dt, Tag::ab), wei_md({k, n}, dt, Tag::ba),
      bias_md({1, n}, dt, Tag::ab), dst_md({m, n}, dt, Tag::ab);
  const std::string key = "linear " + std::to_string(m) + "x" + std::to_string(k) + "x" +
                          std::to_string(n) + " dt" + std::to_string(int(dt)) + " act" +
                          std::to_string(int(act)) + (accumulate ? " sum" : "");
  auto& prim = onednn::cached(key, [&] {
    dnnl::post_ops ops;
    if (accumulate) ops.append_sum(1.0f);
    if (act == Activation::kGelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0, 0);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    return dnnl::matmul(dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(src_md, wei_md, bias_md, dst_md), attr, onednn::engine()));
  });
  prim.execute(onednn::stream(), {{DNNL_ARG_SRC, onednn::wrap(src_md, x2d)},
                                  {DNNL_ARG_WEIGHTS, onednn::wrap(wei_md, w)},
                                  {DNNL_ARG_BIAS, onednn::wrap(bias_md, bias)},
                                  {DNNL_ARG_DST, onednn::wrap(dst_md, dst)}});
  onednn::stream().wait();
}
#endif  // STAM_ONEDNN; without it every product composes LibTorch's operators

std::vector<int64_t> out_shape(const torch::Tensor& x, int64_t out) {
  auto s = x.sizes().vec();
  s.back() = out;
  return s;
}

}  // namespace

void linear_out(torch::Tensor& dst, const torch::Tensor& x, const torch::Tensor& weight,
                const torch::Tensor& bias, Activation act) {
  auto flat = dst.view({-1, weight.size(0)});
  const auto x2d = x.reshape({-1, weight.size(1)}).contiguous();
#if STAM_ONEDNN
  if (use_onednn(x, weight) && dst.scalar_type() == x.scalar_type())
    return onednn_linear(x2d, weight, bias, flat, act, /*accumulate=*/false);
#endif
  at::addmm_out(flat, bias, x2d, weight.t());
  if (act == Activation::kGelu) at::gelu_(flat);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     Activation act) {
  auto y = torch::empty(out_shape(x, weight.size(0)), x.options());
  linear_out(y, x, weight, bias, act);
  return y;
}

void linear_add_(torch::Tensor& residual, const torch::Tensor& x, const torch::Tensor& weight,
                 const torch::Tensor& bias) {
  auto flat = residual.view({-1, weight.size(0)});
  const auto x2d = x.reshape({-1, weight.size(1)}).contiguous();
#if STAM_ONEDNN
  if (use_onednn(x, weight) && residual.scalar_type() == x.scalar_type())
    return onednn_linear(x2d, weight, bias, flat, Activation::kNone, /*accumulate=*/true);
#endif
  flat.addmm_(x2d, weight.t()).add_(bias);
}

std::string linear_backend(const torch::Device& device, c10::ScalarType dtype) {
#if !STAM_ONEDNN
  (void)device;
  (void)dtype;
  return "LibTorch (addmm)";
#else
  if (!device.is_cpu() || !onednn::data_type(dtype)) return "LibTorch (addmm)";
  const auto* v = dnnl_version();
  const memory::desc md({256, 256}, *onednn::data_type(dtype), Tag::ab);
  const memory::desc wmd({256, 256}, *onednn::data_type(dtype), Tag::ba);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md, wmd, md), onednn::engine());
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + " (" + pd.impl_info_str() + ")";
#endif
}

GemmProbe::GemmProbe(int64_t m, int64_t k, int64_t n, const torch::Device& device,
                     c10::ScalarType dtype, bool blas)
    : blas_(blas) {
  const auto opts = torch::TensorOptions().device(device).dtype(dtype);
  a_ = torch::rand({m, k}, opts);
  w_ = torch::rand({n, k}, opts) * 0.01;
  b_ = torch::zeros({n}, opts);
  y_ = torch::empty({m, n}, opts);
}

double GemmProbe::gflop() const {
  return 2.0 * double(a_.size(0)) * double(a_.size(1)) * double(w_.size(0)) / 1e9;
}

double GemmProbe::run(int calls) const {
  using Clock = std::chrono::steady_clock;
  torch::NoGradGuard no_grad;
  const auto t0 = Clock::now();
  for (int i = 0; i < calls; ++i) {
    if (blas_)
      at::addmm_out(y_, b_, a_, w_.t());
    else
      linear_out(y_, a_, w_, b_);
  }
  synchronize(a_.device());
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return gflop() * calls / s;
}

}  // namespace stam
