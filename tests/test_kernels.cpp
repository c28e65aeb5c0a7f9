// The model's kernels against composed LibTorch operators: oneDNN products with fused
// epilogues, oneDNN attention and LayerNorm, and the CPU feature probe that picks BLAS kernels.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "cpu.hpp"
#include "model/attention.hpp"
#include "model/layer_norm.hpp"
#include "model/linear.hpp"
#include "test_util.hpp"
#include "util/npy.hpp"

namespace {

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got.to(torch::kFloat) - want).abs().max() / want.abs().max()).item<double>();
}

struct Weights {
  torch::Tensor x, w, b;
};

Weights make(int64_t rows, int64_t in, int64_t out, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({rows, in}), torch::randn({out, in}) * 0.05, torch::randn({out})};
}

}  // namespace

TEST(Kernels, LinearMatchesLibTorch) {
  torch::NoGradGuard g;
  for (auto [rows, in, out] : {std::tuple{197, 768, 2304}, {3, 5, 7}, {1, 64, 1}}) {
    auto [x, w, b] = make(rows, in, out, 1);
    const auto want = torch::addmm(b, x, w.t());
    EXPECT_LT(rel_err(stam::linear(x, w, b), want), 1e-5) << rows << "x" << in << "x" << out;
    EXPECT_LT(rel_err(stam::linear(x, w, b, stam::Activation::kGelu), torch::gelu(want)), 1e-5);
  }
}

TEST(Kernels, LinearKeepsLeadingDimensionsAndReadsStridedInput) {
  torch::NoGradGuard g;
  auto [x, w, b] = make(24, 16, 8, 2);
  const auto x3 = x.view({2, 12, 16});
  EXPECT_EQ(stam::linear(x3, w, b).sizes(), (std::vector<int64_t>{2, 12, 8}));
  const auto strided = x3.transpose(0, 1);  // not contiguous
  EXPECT_LT(rel_err(stam::linear(strided, w, b), torch::linear(strided, w, b)), 1e-5);
}

TEST(Kernels, LinearAddAccumulatesIntoTheResidual) {
  torch::NoGradGuard g;
  auto [x, w, b] = make(50, 96, 32, 3);
  auto residual = torch::randn({5, 10, 32});
  const auto want = residual + torch::linear(x, w, b).view({5, 10, 32});
  stam::linear_add_(residual, x.view({5, 10, 96}), w, b);
  EXPECT_LT(rel_err(residual, want), 1e-5);
}

// The out variants write into the caller's memory, which the model reuses across its blocks.
TEST(Kernels, OutVariantsWriteIntoTheGivenMemory) {
  torch::NoGradGuard g;
  auto [x, w, b] = make(50, 96, 32, 7);
  auto dst = torch::full({5, 10, 32}, 123.0);
  const void* where = dst.data_ptr();
  stam::linear_out(dst, x.view({5, 10, 96}), w, b, stam::Activation::kGelu);
  EXPECT_EQ(dst.data_ptr(), where);
  EXPECT_LT(rel_err(dst, torch::gelu(torch::linear(x, w, b)).view({5, 10, 32})), 1e-5);

  const auto qkv = torch::randn({3, 17, 3 * 64});
  auto out = torch::full({3, 17, 64}, 123.0);
  where = out.data_ptr();
  stam::self_attention_out(out, qkv, 4);
  EXPECT_EQ(out.data_ptr(), where);
  EXPECT_LT(rel_err(out, stam::self_attention_reference(qkv, 4)), 1e-5);
}

// The packed weight is the weight: the same products, and a packed copy that follows the weight
// when it is written in place or replaced.
TEST(Kernels, PackedWeightFollowsTheWeight) {
  torch::NoGradGuard g;
  auto [x32, w32, b32] = make(40, 256, 96, 9);
  const auto x = x32.to(torch::kBFloat16), b = b32.to(torch::kBFloat16);
  auto w = w32.to(torch::kBFloat16);
  stam::PackedWeight packed;
  auto y = torch::empty({40, 96}, x.options()), plain = torch::empty_like(y);
  const auto expect_same = [&](const char* when) {
    stam::linear_out(y, x, w, b, stam::Activation::kGelu, &packed);
    stam::linear_out(plain, x, w, b, stam::Activation::kGelu);
    EXPECT_LT(rel_err(y, plain.to(torch::kFloat)), 1e-2) << when;
  };
  expect_same("first use");
  w.mul_(-2);  // written in place: same memory, new version
  expect_same("after an in-place write");
  w = (w32 * 3).to(torch::kBFloat16);  // replaced
  expect_same("after a replacement");
  auto residual = torch::randn({40, 96}).to(torch::kBFloat16), want = residual.clone();
  stam::linear_add_(residual, x, w, b, &packed);
  stam::linear_add_(want, x, w, b);
  EXPECT_LT(rel_err(residual, want.to(torch::kFloat)), 1e-2);
  if (packed.state) {  // oneDNN packed it: an fp32 product lets the bf16 copy go
    auto y32 = torch::empty({40, 96});
    stam::linear_out(y32, x32, w32, b32, stam::Activation::kNone, &packed);
    EXPECT_FALSE(packed.state);
  }
}

TEST(Kernels, Bf16LinearIsCloseToFp32) {
  torch::NoGradGuard g;
  auto [x, w, b] = make(64, 256, 128, 4);
  const auto want = torch::linear(x, w, b);
  const auto got = stam::linear(x.to(torch::kBFloat16), w.to(torch::kBFloat16),
                                b.to(torch::kBFloat16), stam::Activation::kNone);
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  EXPECT_LT(rel_err(got, want), 2e-2);
}

// A bf16 LayerNorm is LibTorch's fp32 one rounded once to bf16: within one bf16 step (2^-7
// relative) of it, which statistics kept in bf16 would miss by far on these inputs.
TEST(Kernels, Bf16LayerNormRoundsTheFp32ResultOnce) {
  torch::NoGradGuard g;
  torch::manual_seed(7);
  // Tokens with a large common offset are where a bf16 mean or variance would go wrong.
  const auto x = (torch::randn({2, 197, 768}) * 3 + 40).to(torch::kBFloat16);
  const auto w = torch::randn({768}), b = torch::randn({768});
  const auto want = torch::layer_norm(x.to(torch::kFloat), {768}, w, b, 1e-6);
  const auto got = stam::layer_norm(x, w, b, 1e-6);
  ASSERT_EQ(got.scalar_type(), torch::kBFloat16);
  ASSERT_EQ(got.sizes(), x.sizes());
  const auto step = want.abs() * std::ldexp(1.0, -7) + 1e-5;  // a bf16 step, + fp32's
  const auto over = (got.to(torch::kFloat) - want).abs() - step;
  EXPECT_LE(over.max().item<double>(), 0.0);
}

// Tokens of variance ~1e-8, where eps decides the result: each eps gets its own normalisation,
// however close the two are.
TEST(Kernels, Bf16LayerNormKeepsEachEps) {
  torch::NoGradGuard g;
  torch::manual_seed(9);
  const auto x = (torch::randn({3, 64}) * 1e-4).to(torch::kBFloat16);
  const auto w = torch::ones({64}), b = torch::zeros({64});
  for (double eps : {1e-7, 1e-9}) {
    const auto want = torch::layer_norm(x.to(torch::kFloat), {64}, w, b, eps);
    EXPECT_LT(rel_err(stam::layer_norm(x, w, b, eps), want), 1e-2) << eps;
  }
}

TEST(Kernels, LayerNormReadsStridedInputAndKeepsFp32) {
  torch::NoGradGuard g;
  torch::manual_seed(8);
  const auto x = torch::randn({4, 9, 64}), w = torch::randn({64}), b = torch::randn({64});
  EXPECT_TRUE(
      torch::equal(stam::layer_norm(x, w, b, 1e-5), torch::layer_norm(x, {64}, w, b, 1e-5)));
  const auto cls16 = x.to(torch::kBFloat16).select(1, 0);  // (4, 64), rows 9 x 64 apart
  ASSERT_FALSE(cls16.is_contiguous());
  const auto got16 = stam::layer_norm(cls16, w, b, 1e-5);
  const auto want = torch::layer_norm(x.select(1, 0), {64}, w, b, 1e-5);
  EXPECT_LT(rel_err(got16, want), 2e-2);
}

TEST(Kernels, AttentionMatchesComposedOperators) {
  torch::NoGradGuard g;
  torch::manual_seed(5);
  // The spatial shape (197 tokens, 12 heads of 64) and the temporal one (17 tokens, 8 of 96).
  for (auto [b, l, d, heads] : {std::tuple{3, 197, 768, 12}, {2, 17, 768, 8}, {1, 1, 8, 2}}) {
    const auto qkv = torch::randn({b, l, 3 * d});
    const auto want = stam::self_attention_reference(qkv, heads);
    const auto got = stam::self_attention(qkv, heads);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT(rel_err(got, want), 1e-5) << b << "x" << l << "x" << d << "/" << heads;
    const auto got16 = stam::self_attention(qkv.to(torch::kBFloat16), heads);
    EXPECT_LT(rel_err(got16, want), 3e-2);
  }
}

// In bf16 the scores and the softmax are computed in fp32: against fp32 attention over the same
// bf16-rounded q, k, v, only the stored probabilities and the output are rounded (~2^-9 each).
TEST(Kernels, Bf16AttentionComputesScoresAndSoftmaxInFp32) {
  torch::NoGradGuard g;
  torch::manual_seed(6);
  // Large scores (q, k of norm ~3 x 8) are where bf16 scores would lose the softmax.
  const auto qkv = (torch::randn({2, 197, 3 * 768}) * 3).to(torch::kBFloat16);
  const auto want = stam::self_attention_reference(qkv.to(torch::kFloat), 12);
  const auto got = stam::self_attention(qkv, 12);
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  const double err = rel_err(got, want);
  EXPECT_LT(err, 8e-3) << err;
}

// q k^T that overflows the scores' dtype while q k^T / sqrt(hd) does not: the composed version
// (CUDA's, in fp16) must scale q first. LibTorch has no fp16 product on CPU, so this is fp32 at
// its own limit: q.k = 64 x 2^62 x 2^62 = 2^130 is infinite, 2^127 (scaled by 1/8) is not.
TEST(Kernels, ReferenceAttentionScalesQBeforeTheProduct) {
  torch::NoGradGuard g;
  auto qkv = torch::full({1, 3, 3 * 64}, std::ldexp(1.0, 62));
  qkv.narrow(2, 128, 64).copy_(torch::randn({1, 3, 64}));  // v
  const auto out = stam::self_attention_reference(qkv, 1);
  ASSERT_TRUE(torch::isfinite(out).all().item<bool>()) << out;
  // Equal scores: every token attends to all three alike.
  const auto mean_v = qkv.narrow(2, 128, 64).mean(1, /*keepdim=*/true).expand({1, 3, 64});
  EXPECT_TRUE(torch::allclose(out, mean_v, 1e-5, 1e-6));
}

TEST(Kernels, AttentionReadsANonContiguousProjection) {
  torch::NoGradGuard g;
  const auto wide = torch::randn({2, 10, 3 * 32 + 5});
  const auto qkv = wide.narrow(2, 5, 3 * 32);
  EXPECT_LT(rel_err(stam::self_attention(qkv, 4), stam::self_attention_reference(qkv, 4)), 1e-5);
  // bf16 copies each item's heads into a dense buffer first: from the narrowed view too.
  const auto qkv16 = wide.to(torch::kBFloat16).narrow(2, 5, 3 * 32);
  EXPECT_LT(rel_err(stam::self_attention(qkv16, 4),
                    stam::self_attention_reference(qkv16.to(torch::kFloat), 4)),
            8e-3);
}

TEST(Kernels, BackendsAreNamed) {
#if STAM_ONEDNN
  EXPECT_EQ(stam::linear_backend(torch::kCPU, torch::kFloat).rfind("oneDNN ", 0), 0u);
#else
  EXPECT_EQ(stam::linear_backend(torch::kCPU, torch::kFloat), "LibTorch (addmm)");
#endif
  EXPECT_EQ(stam::linear_backend(torch::kCPU, torch::kHalf), "LibTorch (addmm)");
  const auto blas = stam::gemm_backend();
  EXPECT_FALSE(blas.library.empty());
  EXPECT_NE(blas.describe().find(blas.library), std::string::npos);
}

TEST(Cpu, FeaturesAreConsistent) {
  const auto& cpu = stam::cpu_info();
  EXPECT_FALSE(cpu.model.empty());
  if (cpu.has("avx2")) {
    EXPECT_TRUE(cpu.has("avx"));
  }
  if (cpu.has("avx512_bf16")) {
    EXPECT_TRUE(cpu.has("avx512f"));
  }
}

// OpenBLAS's kernels are whatever it picks, or the user's OPENBLAS_CORETYPE; -v names them and
// who chose them. With oneDNN the model does not use them; without it, its products do.
// The input is a .npy of the tiny model's 8 frames of 224x224, which every build reads.
TEST(Cpu, VerboseNamesOpenBlasKernelsAndWhoChoseThem) {
  stam::test::TempDir dir;
  const std::string frames = dir.file("grey.npy");
  stam::test::write_file(
      frames, stam::npy_header("|u1", {8, 224, 224, 3}) + std::string(8 * 224 * 224 * 3, '\x80'));
  const std::string run = stam::test::stam_cmd(
      "classify " + stam::test::shell_quote(frames) + " -w " +
      stam::test::shell_quote(stam::test::fixture_path("tiny_stam.pth")) + " -v");
  auto unset = stam::test::run_command("env -u OPENBLAS_CORETYPE " + run);
  ASSERT_EQ(unset.exit_code, 0) << unset.err;
  EXPECT_NE(unset.err.find("kernels (chosen by OpenBLAS from the CPU model)"), std::string::npos)
      << unset.err;
  auto user = stam::test::run_command("OPENBLAS_CORETYPE=Prescott " + run);
  ASSERT_EQ(user.exit_code, 0) << user.err;
  EXPECT_NE(user.err.find("Prescott kernels (chosen by OPENBLAS_CORETYPE)"), std::string::npos)
      << "the user's setting is named: " << user.err;
}
