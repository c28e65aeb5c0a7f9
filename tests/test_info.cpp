// stam info: the architecture facts from a config, the checkpoint description and the machine.
#include <gtest/gtest.h>
#include <torch/version.h>

#include <algorithm>

#include "checkpoint/checkpoint.hpp"
#include "info.hpp"
#include "model/model.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"

using stam::test::fixture_path;
using stam::test::shell_quote;

TEST(Info, ParameterCountOfStam16FromTheArchitecture) {
  EXPECT_EQ(stam::parameter_count(stam::StamConfig{}), 119205520);  // STAM-16, as published
  stam::StamConfig eight;
  eight.frames = 8;  // one temporal position row per frame less
  EXPECT_EQ(stam::parameter_count(eight), 119205520 - 8 * 768);
}

TEST(Info, ParameterCountMatchesTheBuiltModel) {
  auto ckpt = stam::Checkpoint::open(fixture_path("tiny_stam.pth"));
  const auto cfg = stam::StamConfig::from_checkpoint(ckpt);
  stam::Stam model(cfg);
  EXPECT_EQ(stam::parameter_count(cfg), stam::count_parameters(model));
}

TEST(Info, DescribesTheTinyCheckpoint) {
  auto ckpt = stam::Checkpoint::open(fixture_path("tiny_stam.pth"));
  const auto c = stam::checkpoint_info(ckpt);
  EXPECT_EQ(c["format"], "zip");
  EXPECT_EQ(c["state_dict_key"], "model");
  EXPECT_EQ(c["dtype"], "float32");
  EXPECT_EQ(c["tensors"], ckpt.entries().size());

  const auto m = stam::model_info(stam::StamConfig::from_checkpoint(ckpt));
  EXPECT_EQ(m["frames"], 8);  // tiny_stam_expected.json's config
  EXPECT_EQ(m["classes"], 400);
  EXPECT_EQ(m["embed_dim"], 128);
  EXPECT_EQ(m["depth"], 2);
  EXPECT_EQ(m["mlp_hidden"], 256);
  EXPECT_EQ(m["temporal_layers"], 2);
}

TEST(Info, Stam16GflopAndTheLegacyContainer) {
  EXPECT_NEAR(stam::model_info(stam::StamConfig{})["gflop_per_video"].get<double>(), 562.6, 1.0);
  auto legacy = stam::Checkpoint::open(fixture_path("tiny_stam_legacy.pth"));
  EXPECT_EQ(stam::checkpoint_info(legacy)["format"], "legacy");
}

TEST(Info, SystemNamesCpuFeaturesLibrariesAndBackends) {
  const auto s = stam::system_info();
  for (const char* key : {"cpu", "cpu_features", "avx512", "avx512_bf16", "amx", "cuda", "device",
                          "threads", "libtorch", "opencv", "gemm_backend", "blas"})
    EXPECT_TRUE(s.contains(key)) << key;
  EXPECT_GE(s["threads"].get<int>(), 1);
  EXPECT_EQ(s["libtorch"], TORCH_VERSION);
  const auto features = s["cpu_features"].get<std::vector<std::string>>();
  const bool avx512 = std::find(features.begin(), features.end(), "avx512f") != features.end();
  EXPECT_EQ(s["avx512"].get<bool>(), avx512);
  EXPECT_EQ(s["device"], s["cuda"].get<bool>() ? "cuda" : "cpu");
}

TEST(Info, TextIsOneAlignedLinePerField) {
  const nlohmann::ordered_json info{
      {"model", {{"frames", 16}, {"temporal_heads", 8}}},
      {"system", {{"cuda", false}, {"cpu_features", {"avx2", "fma"}}}}};
  EXPECT_EQ(stam::info_text(info),
            "model\n"
            "  frames:           16\n"
            "  temporal heads:   8\n"
            "system\n"
            "  cuda:             no\n"
            "  cpu features:     avx2 fma\n");
}

TEST(InfoCli, JsonHasTheThreeSections) {
  auto r = stam::test::run_command(shell_quote(stam::test::stam_binary()) + " info " +
                                   shell_quote(fixture_path("tiny_stam.pth")) + " --format json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Not a terminal: one line, as classify, timeline and eval print for a program.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["checkpoint"]["format"], "zip");
  EXPECT_EQ(j["model"]["frames"], 8);
  stam::Stam model(
      stam::StamConfig::from_checkpoint(stam::Checkpoint::open(fixture_path("tiny_stam.pth"))));
  EXPECT_EQ(j["model"]["parameters"], stam::count_parameters(model));
  EXPECT_TRUE(j["system"]["threads"].is_number_integer());
  EXPECT_EQ(stam::test::run_command(shell_quote(stam::test::stam_binary()) + " info " +
                                    shell_quote(fixture_path("tiny_stam.pth")) + " --format xml")
                .exit_code,
            2);
}

// README calls info the check that a file is good: a checkpoint whose weights hold NaN or
// infinities loads, and gives NaN scores, so it must not pass. micro_nonfinite.pth is micro_ok.pth
// with NaN, +inf and -inf at the start of blocks.0.attn.qkv.weight and NaN in head.weight.
TEST(Info, NonFiniteWeightsAreAModelErrorNamingTheFirstTensor) {
  EXPECT_NO_THROW(stam::check_finite(stam::Checkpoint::open(fixture_path("micro_ok.pth"))));
  const auto path = fixture_path("micro_nonfinite.pth");
  try {
    stam::check_finite(stam::Checkpoint::open(path));
    FAIL() << "accepted";
  } catch (const stam::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(path +
                                         ": tensor 'blocks.0.attn.qkv.weight' has 3 of 3072 "
                                         "values NaN or infinite, and 1 other tensor has some too"),
              std::string::npos)
        << e.what();
  }
}

TEST(InfoCli, NonFiniteWeightsFailWithExitFour) {
  const std::string info = shell_quote(stam::test::stam_binary()) + " info ";
  const auto bad = stam::test::run_command(info + shell_quote(fixture_path("micro_nonfinite.pth")));
  EXPECT_EQ(bad.exit_code, 4) << bad.err;
  EXPECT_NE(bad.err.find("'blocks.0.attn.qkv.weight' has 3 of 3072 values NaN or infinite"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.out, "");
  const auto good = stam::test::run_command(info + shell_quote(fixture_path("micro_ok.pth")));
  EXPECT_EQ(good.exit_code, 0) << good.err;
}

TEST(InfoCli, HelpSaysExitFourIsAboutTheCheckpointAlone) {
  // info reads no labels file, so its help does not say exit 4 may be about one.
  const auto r = stam::test::run_command(shell_quote(stam::test::stam_binary()) + " info --help");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  4    model error (checkpoint missing, corrupt, not STAM's or not "
                       "finite)"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("labels"), std::string::npos) << r.out;
}
