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

}  // namespace

struct PackedWeight::State {
  torch::Tensor storage;  // bytes, in `layout`
  memory::desc layout;
  // What it was made from: the weight's storage (held weakly, so that a new one can never take
  // its place at the same address unseen), its data and its version counter then.
  c10::weak_intrusive_ptr<c10::StorageImpl> source{c10::intrusive_ptr<c10::StorageImpl>()};
  const void* data = nullptr;
  int64_t version = -1;

  bool made_from(const torch::Tensor& w) const {
    return !source.expired() && source._unsafe_get_target() == w.storage().unsafeGetStorageImpl() &&
           data == w.data_ptr() && version == int64_t(w._version());
  }
};

namespace {

// The packed copy of w in the layout `want`, remade if w or the layout changed since.
dnnl::memory packed_weight(PackedWeight& packed, const torch::Tensor& w, const memory::desc& plain,
                           const memory::desc& want) {
  auto& s = packed.state;
  if (!s) s = std::make_shared<PackedWeight::State>();
  if (!s->made_from(w) || s->layout != want) {
    s->storage = torch::empty({int64_t(want.get_size())}, w.options().dtype(torch::kByte));
    s->layout = want;
    dnnl::memory from = onednn::wrap(plain, w), to = onednn::wrap(want, s->storage);
    dnnl::reorder(from, to).execute(onednn::stream(), from, to);
    onednn::stream().wait();
    s->source = w.storage().getWeakStorageImpl();
    s->data = w.data_ptr();
    s->version = int64_t(w._version());
  }
  return onednn::wrap(s->layout, s->storage);
}

// dst (M x N) = act(x (M x K) W^T + b) [+ dst when accumulate], W stored (N x K) row-major,
// which oneDNN reads as a K x N matrix in "ba" order: no transposed copy. With `packed`, the
// primitive picks its own weight layout and reads W's packed copy in it instead.
void onednn_linear(const torch::Tensor& x2d, const torch::Tensor& w, const torch::Tensor& b,
                   torch::Tensor& dst, Activation act, bool accumulate, PackedWeight* packed) {
  const memory::dim m = x2d.size(0), k = x2d.size(1), n = w.size(0);
  const auto dt = *onednn::data_type(x2d.scalar_type());
  const auto bias = b.to(x2d.scalar_type());
  const memory::desc src_md({m, k}, dt, Tag::ab), wei_md({k, n}, dt, Tag::ba),
      bias_md({1, n}, dt, Tag::ab), dst_md({m, n}, dt, Tag::ab);
  // In fp32 the packed copy (344 MB for STAM-16) bought 1-3% of a forward; in bf16 it buys ~8%.
  // A copy packed before the weight became fp32 is let go.
  if (packed && dt != memory::data_type::bf16) {
    packed->state.reset();
    packed = nullptr;
  }
  const memory::desc any_md({k, n}, dt, Tag::any);
  const std::string key = "linear " + std::to_string(m) + "x" + std::to_string(k) + "x" +
                          std::to_string(n) + " dt" + std::to_string(int(dt)) + " act" +
                          std::to_string(int(act)) + (accumulate ? " sum" : "") +
                          (packed ? " packed" : "");
  auto& prim = onednn::cached(key, [&] {
    dnnl::post_ops ops;
    if (accumulate) ops.append_sum(1.0f);
    if (act == Activation::kGelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0, 0);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    return dnnl::matmul(dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(src_md, packed ? any_md : wei_md, bias_md, dst_md), attr,
        onednn::engine()));
  });
  dnnl::memory weights = onednn::wrap(wei_md, w);
  if (packed) {
    const auto* want =
        dnnl_primitive_desc_query_md(prim.get_primitive_desc(), dnnl_query_weights_md, 0);
    weights = packed_weight(*packed, w, wei_md, memory::desc(*want));
  }
  prim.execute(onednn::stream(), {{DNNL_ARG_SRC, onednn::wrap(src_md, x2d)},
                                  {DNNL_ARG_WEIGHTS, weights},
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
                const torch::Tensor& bias, Activation act, PackedWeight* packed) {
  auto flat = dst.view({-1, weight.size(0)});
  const auto x2d = x.reshape({-1, weight.size(1)}).contiguous();
#if STAM_ONEDNN
  if (use_onednn(x, weight) && dst.scalar_type() == x.scalar_type())
    return onednn_linear(x2d, weight, bias, flat, act, /*accumulate=*/false, packed);
#else
  (void)packed;
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
                 const torch::Tensor& bias, PackedWeight* packed) {
  auto flat = residual.view({-1, weight.size(0)});
  const auto x2d = x.reshape({-1, weight.size(1)}).contiguous();
#if STAM_ONEDNN
  if (use_onednn(x, weight) && residual.scalar_type() == x.scalar_type())
    return onednn_linear(x2d, weight, bias, flat, Activation::kNone, /*accumulate=*/true, packed);
#else
  (void)packed;
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
      linear_out(y_, a_, w_, b_, Activation::kNone, &packed_);
  }
  synchronize(a_.device());
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return gflop() * calls / s;
}

}  // namespace stam
