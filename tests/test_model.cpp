// Model parity against the PyTorch reference (scripts/reference_stam.py) and the full-size shape.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint.hpp"
#include "device.hpp"
#include "model/model.hpp"
#include "model/precision.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"

using stam::test::fixture_path;
using stam::test::sci;

namespace {

nlohmann::json expected() {
  std::ifstream in(fixture_path("tiny_stam_expected.json"));
  return nlohmann::json::parse(in);
}

std::vector<double> values(const torch::Tensor& t) {
  auto flat = t.to(torch::kDouble).flatten().contiguous();
  return {flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel()};
}

double rel_error(const torch::Tensor& got, const nlohmann::json& want) {
  return stam::test::relative_error(values(got), want.get<std::vector<double>>());
}

// The integer pattern scripts/reference_stam.py feeds the reference, rebuilt exactly.
torch::Tensor pattern_frames(int64_t t, int64_t size) {
  auto ti = torch::arange(t).view({t, 1, 1, 1});
  auto c = torch::arange(3).view({1, 3, 1, 1});
  auto h = torch::arange(size).view({1, 1, size, 1});
  auto w = torch::arange(size).view({1, 1, 1, size});
  auto v = (ti * 37 + c * 101 + h * 7 + w * 3 + (h * w) % 11) % 256;
  return v.to(torch::kFloat) / 255.0;
}

// Equal to the bit with oneDNN's products; within 1e-5 of the largest logit with LibTorch's.
void expect_equal_with_onednn(const torch::Tensor& a, const torch::Tensor& b) {
#if STAM_ONEDNN
  EXPECT_TRUE(torch::equal(a, b)) << (a - b).abs().max().item<float>();
#else
  EXPECT_LT(((a - b).abs().max() / b.abs().max()).item<double>(), 1e-5);
#endif
}

stam::Stam load(const std::string& name, int64_t frames = 0) {
  auto ckpt = stam::Checkpoint::open(fixture_path(name));
  auto cfg = stam::StamConfig::from_checkpoint(ckpt);
  if (frames > 0) cfg.frames = frames;
  stam::Stam model(cfg);
  stam::load_weights(model, ckpt);
  model->eval();
  return model;
}

}  // namespace

// fp32 on the CPU: the parameters are the checkpoint's mapped bytes, not copies of them.
TEST(Model, Fp32WeightsAreTakenFromTheMappedFileWithoutCopying) {
  auto ckpt = stam::Checkpoint::open(fixture_path("tiny_stam.pth"));
  ASSERT_EQ(ckpt.format(), "zip");
  stam::Stam model(stam::StamConfig::from_checkpoint(ckpt));
  stam::load_weights(model, ckpt);
  for (const auto& p : model->named_parameters()) {
    if (p.value().numel() == 0) continue;
    EXPECT_EQ(p.value().data_ptr(), ckpt.view(p.key()).data_ptr()) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), ckpt.load(p.key()))) << p.key();
  }
}

TEST(Model, ConfigComesFromTheCheckpoint) {
  auto ckpt = stam::Checkpoint::open(fixture_path("tiny_stam.pth"));
  auto cfg = stam::StamConfig::from_checkpoint(ckpt);
  auto want = expected()["config"];
  EXPECT_EQ(cfg.image_size, want["image"]);
  EXPECT_EQ(cfg.patch_size, want["patch"]);
  EXPECT_EQ(cfg.embed_dim, want["dim"]);
  EXPECT_EQ(cfg.depth, want["depth"]);
  EXPECT_EQ(cfg.num_heads, want["heads"]);
  EXPECT_EQ(cfg.mlp_hidden, want["hidden"]);
  EXPECT_EQ(cfg.frames, want["frames"]);
  EXPECT_EQ(cfg.temporal_layers, want["t_layers"]);
  EXPECT_EQ(cfg.temporal_ffn, want["t_ffn"]);
  EXPECT_EQ(cfg.num_classes, want["classes"]);
}

TEST(Model, SpatialAndFullParityWithPyTorch) {
  torch::NoGradGuard no_grad;
  auto model = load("tiny_stam.pth");
  auto want = expected();
  auto x = pattern_frames(model->config.frames, model->config.image_size);
  double emb_err = rel_error(model->encode_frames(x), want["pattern_frame_embeddings"]);
  double logit_err = rel_error(model->forward(x), want["pattern_logits"]);
  RecordProperty("frame_embedding_rel_error", sci(emb_err));
  RecordProperty("logit_rel_error", sci(logit_err));
  EXPECT_LE(emb_err, 1e-5);
  EXPECT_LE(logit_err, 1e-5);
}

TEST(Model, LegacyContainerGivesTheSameLogits) {
  torch::NoGradGuard no_grad;
  auto model = load("tiny_stam_legacy.pth");
  auto x = pattern_frames(model->config.frames, model->config.image_size);
  EXPECT_LE(rel_error(model->forward(x), expected()["pattern_logits"]), 1e-5);
}

TEST(Model, OtherFrameCountResamplesTemporalPositions) {
  torch::NoGradGuard no_grad;
  auto model = load("tiny_stam.pth", 16);
  EXPECT_EQ(model->aggregate->pos_embed.size(1), 17);
  auto x = pattern_frames(16, model->config.image_size);
  EXPECT_LE(rel_error(model->forward(x), expected()["pattern16_logits"]), 1e-5);
}

TEST(Model, ResamplingKeepsClsRowAndEndpointsAtSameLength) {
  auto pos = torch::randn({1, 9, 4});
  auto same = stam::resample_temporal_pos_embed(pos, 8);
  EXPECT_TRUE(torch::allclose(same, pos));
  auto up = stam::resample_temporal_pos_embed(pos, 32);
  EXPECT_EQ(up.sizes(), (std::vector<int64_t>{1, 33, 4}));
  EXPECT_TRUE(torch::equal(up[0][0], pos[0][0]));
}

TEST(Model, SpatialAndTemporalEncodersAreSeparatelyCallable) {
  torch::NoGradGuard no_grad;
  auto model = load("tiny_stam.pth");
  const auto& c = model->config;
  auto x = pattern_frames(2 * c.frames, c.image_size);  // two videos
  auto frames = model->encode_frames(x);
  ASSERT_EQ(frames.sizes(), (std::vector<int64_t>{2 * c.frames, c.embed_dim}));
  auto clips = model->encode_clip(frames.view({2, c.frames, c.embed_dim}));
  auto logits = model->classify(clips);
  EXPECT_TRUE(torch::allclose(logits, model->forward(x)));
  // Each video's result is independent of its batch neighbour.
  auto first = model->forward(x.slice(0, 0, c.frames));
  EXPECT_TRUE(torch::allclose(logits[0], first[0], 1e-5, 1e-6));
}

// Classifier converts uint8 pixels one chunk at a time through `prepare`; chunking and the
// conversion must not change the embeddings.
TEST(Model, EncodeFramesPreparesEachChunkAlone) {
  torch::NoGradGuard no_grad;
  auto model = load("tiny_stam.pth");
  const auto& c = model->config;
  const int64_t n = 7;  // not a multiple of the chunk: the last one is shorter
  const auto x = pattern_frames(n, c.image_size);
  const auto want = model->encode_frames(x);
  model->frame_chunk = 3;
  std::vector<int64_t> seen, expected_sizes;
  for (int64_t i = 0; i < n; i += 3) expected_sizes.push_back(std::min<int64_t>(3, n - i));
  const auto got = model->encode_frames(x * 2, [&](const torch::Tensor& chunk) {
    seen.push_back(chunk.size(0));
    return chunk / 2;
  });
  EXPECT_EQ(seen, expected_sizes);
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-6));
}

// One scratch buffer serves every block and chunk: a smaller input reuses it, a larger one or
// another dtype gets a new one.
TEST(Model, BlockScratchIsReusedUntilItIsTooSmall) {
  stam::BlockScratch scratch;
  scratch.fit(torch::empty({4, 5, 8}), 16);  // max(4 x 8, 16) = 32 values a token
  ASSERT_EQ(scratch.buffer.numel(), 4 * 5 * 32);
  EXPECT_EQ(scratch.qkv.sizes(), (std::vector<int64_t>{4, 5, 24}));
  EXPECT_EQ(scratch.attn_out.sizes(), (std::vector<int64_t>{4, 5, 8}));
  EXPECT_EQ(scratch.hidden.sizes(), (std::vector<int64_t>{4, 5, 16}));
  // The attention output sits after the projections; the hidden layer reuses both.
  EXPECT_EQ(scratch.attn_out.data_ptr<float>(), scratch.qkv.data_ptr<float>() + 4 * 5 * 24);
  EXPECT_EQ(scratch.hidden.data_ptr(), scratch.buffer.data_ptr());
  const void* first = scratch.buffer.data_ptr();
  scratch.fit(torch::empty({2, 5, 8}), 16);
  EXPECT_EQ(scratch.buffer.data_ptr(), first);
  EXPECT_EQ(scratch.qkv.size(0), 2);
  scratch.fit(torch::empty({8, 5, 8}), 16);
  EXPECT_EQ(scratch.buffer.numel(), 8 * 5 * 32);
  scratch.fit(torch::empty({2, 5, 8}, torch::kBFloat16), 16);
  EXPECT_EQ(scratch.qkv.scalar_type(), torch::kBFloat16);
}

TEST(Model, FullSizeStam16) {
  torch::NoGradGuard no_grad;
  stam::StamConfig cfg;  // defaults are ViT-B/16 + 6-layer temporal encoder, 16 frames, 400
  stam::Stam model(cfg);
  EXPECT_EQ(stam::count_parameters(model), 119205520);
  EXPECT_EQ(model->named_parameters().size(), 228u);
  stam::init_random(model, 0);
  model->eval();
  auto logits = model->forward(torch::rand({16, 3, 224, 224}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 400}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

// The model's thread count changes while clips decode beside it, so the logits must not depend
// on it: oneDNN splits ViT-B's products by rows and columns, never along the sum. A build without
// oneDNN (the GPU core) decodes nothing beside the model, and its CPU products are LibTorch's
// addmm, whose BLAS may split the sum: there the logits agree to rounding, not to the bit.
TEST(Model, FullSizeLogitsDoNotDependOnTheThreadCount) {
  torch::NoGradGuard no_grad;
  stam::StamConfig cfg;
  cfg.frames = 2;
  stam::Stam model(cfg);
  stam::init_random(model, 1);
  model->eval();
  const auto x = torch::rand({2, 3, 224, 224});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = model->forward(x);
  at::set_num_threads(2);
  const auto two = model->forward(x);
  at::set_num_threads(threads);
  expect_equal_with_onednn(one, two);
}

// Between blocks the model leaves a core to each clip being decoded, and takes it back after.
TEST(Model, LeavesACoreToEachClipBeingDecoded) {
  torch::NoGradGuard no_grad;
  const int cores = stam::usable_cpu_cores();
  stam::configure_cpu_runtime(cores);
  auto model = load("tiny_stam.pth");
  const auto x = pattern_frames(model->config.frames, model->config.image_size);
  const auto alone = model->forward(x);
  EXPECT_EQ(at::get_num_threads(), cores);
  torch::Tensor beside;
  {
    stam::DecodeLease lease;
    beside = model->forward(x);
    EXPECT_EQ(at::get_num_threads(), std::max(1, cores - 1));
  }
  model->forward(x);
  EXPECT_EQ(at::get_num_threads(), cores);
  expect_equal_with_onednn(alone, beside);
}

TEST(Model, BrokenCheckpointsNameTheKeyAndShapes) {
  auto expect_error = [](const std::string& file, const std::vector<std::string>& needles) {
    auto ckpt = stam::Checkpoint::open(fixture_path(file));
    try {
      stam::Stam model(stam::StamConfig::from_checkpoint(ckpt));
      stam::load_weights(model, ckpt);
      FAIL() << file << " loaded without error";
    } catch (const stam::ModelError& e) {
      for (const auto& n : needles)
        EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
    }
  };
  expect_error("micro_missing.pth", {"micro_missing.pth", "blocks.0.attn.proj.bias", "[32]"});
  expect_error("micro_badshape.pth", {"blocks.0.mlp.fc2.weight", "[32, 100]", "[32, 64]"});
  expect_error("micro_extra.pth", {"unexpected", "blocks.0.attn.extra"});
}

TEST(Model, LoadsIntoBf16WithoutChangingTheCode) {
  torch::NoGradGuard no_grad;
  auto ckpt = stam::Checkpoint::open(fixture_path("tiny_stam.pth"));
  stam::Stam model(stam::StamConfig::from_checkpoint(ckpt));
  model->to(torch::kBFloat16);
  stam::load_weights(model, ckpt);
  model->eval();
  auto x = pattern_frames(model->config.frames, model->config.image_size).to(torch::kBFloat16);
  auto logits = model->forward(x);
  EXPECT_EQ(logits.scalar_type(), torch::kBFloat16);
  // bf16 keeps ~3 significant digits; the ranking of a random model's logits is what users see.
  EXPECT_LE(rel_error(logits, expected()["pattern_logits"]), 5e-2);
}

// Weights converted to bf16 do not stay in memory beside their fp32 bytes in the mapped file:
// only the tensors kept as fp32 views (LayerNorm, head) stay resident. A STAM-16 classify in bf16
// peaked at 930 MB with the whole file resident, 470 MB without.
TEST(Model, ConvertedWeightsLeaveTheMappedFile) {
  torch::NoGradGuard no_grad;
  stam::test::TempDir dir;
  const std::string path = dir.file("tiny.pth");
  std::filesystem::copy_file(fixture_path("tiny_stam.pth"), path);
  int64_t stored = 0, kept = 0;
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    auto ckpt = stam::Checkpoint::open(path);
    stam::Stam model(stam::StamConfig::from_checkpoint(ckpt));
    stam::place(model, torch::Device(torch::kCPU), dtype);
    stam::load_weights(model, ckpt);
    const int64_t resident = stam::test::resident_bytes_of_mapping(path);
    if (dtype == torch::kFloat) {
      for (const auto& e : ckpt.entries()) stored += ckpt.view(e.key).nbytes();
      EXPECT_GE(resident, stored * 9 / 10) << "fp32 parameters are views of the mapping";
      continue;
    }
    for (const auto& p : model->parameters())
      if (p.scalar_type() == torch::kFloat) kept += p.nbytes();
    // Pages a converted tensor shares with its neighbours stay: two at most for each tensor.
    const int64_t edges = 2 * ::sysconf(_SC_PAGESIZE) * int64_t(ckpt.entries().size());
    EXPECT_LE(resident, kept + edges) << "of " << stored << " bytes stored";
    EXPECT_GT(kept, 0);
  }
}

// place() in bf16: the products run in bf16, but LayerNorm and the head keep fp32 parameters, so
// the logits come out fp32 and within 2e-2 of the reference's fp32 logits.
TEST(Model, PlacedInBf16KeepsNormsAndLogitsFp32) {
  torch::NoGradGuard no_grad;
  auto ckpt = stam::Checkpoint::open(fixture_path("tiny_stam.pth"));
  stam::Stam model(stam::StamConfig::from_checkpoint(ckpt));
  stam::place(model, torch::Device(torch::kCPU), torch::kBFloat16);
  stam::load_weights(model, ckpt);
  model->eval();
  EXPECT_EQ(model->blocks[0]->as<stam::Block>()->mlp->fc1->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(model->patch_embed->proj->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(model->norm->weight.scalar_type(), torch::kFloat);
  EXPECT_EQ(model->head->weight.scalar_type(), torch::kFloat);
  auto x = pattern_frames(model->config.frames, model->config.image_size).to(torch::kBFloat16);
  // The clip embedding leaves the final norm in fp32, not rounded to bf16 before the head.
  const auto frames = model->encode_frames(x);
  EXPECT_EQ(frames.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(model->encode_clip(frames.view({1, model->config.frames, -1})).scalar_type(),
            torch::kFloat);
  auto logits = model->forward(x);
  EXPECT_EQ(logits.scalar_type(), torch::kFloat);
  const double err = rel_error(logits, expected()["pattern_logits"]);
  EXPECT_LE(err, 2e-2) << sci(err);
}
