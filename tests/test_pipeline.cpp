// End-to-end parity: real videos decoded, sampled, preprocessed and classified by the C++ pipeline
// against the same steps done by PyAV + PIL + the PyTorch reference (scripts/reference_stam.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cpu.hpp"
#include "device.hpp"
#include "model/precision.hpp"
#include "pipeline/pipeline.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"

using stam::test::fixture_path;
using stam::test::tiny_model_options;
using stam::test::video_path;

namespace {

class VideoParity : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(VideoParity, LogitsMatchTheReferencePipeline) {
  std::ifstream in(fixture_path("tiny_stam_expected.json"));
  const auto want = nlohmann::json::parse(in)["videos"][GetParam()];
  stam::Classifier classifier(tiny_model_options());
  auto r = classifier.classify(video_path(GetParam()));

  EXPECT_EQ(r.frame_indices, want["indices"].get<std::vector<int64_t>>());
  const auto ref = want["logits"].get<std::vector<double>>();
  const double err =
      stam::test::relative_error(std::vector<double>(r.logits.begin(), r.logits.end()), ref);
  RecordProperty("logit_rel_error", stam::test::sci(err));
  EXPECT_LE(err, 1e-5) << GetParam();

  ASSERT_EQ(r.top_k.size(), 5u);
  EXPECT_EQ(r.top_k[0].index, std::max_element(ref.begin(), ref.end()) - ref.begin());
  EXPECT_GE(r.top_k[0].score, r.top_k[4].score);
  EXPECT_EQ(r.top_k[0].label, classifier.labels()[static_cast<size_t>(r.top_k[0].index)]);
  EXPECT_GT(r.timings.spatial_ms, 0.0);
  EXPECT_GE(r.timings.total_ms, r.timings.decode_ms + r.timings.spatial_ms);
}

INSTANTIATE_TEST_SUITE_P(TestVideos, VideoParity,
                         ::testing::Values("arm_wrestling_340x256_28fps.mp4",
                                           "mpeg4_320x240_25fps.avi", "short_32frames_30fps.mp4",
                                           "hd_1920x1080_30fps.mp4"),
                         [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.find('_'));
                           return n == "mpeg4" ? std::string("mpeg4") : n;
                         });

TEST(Pipeline, ScoresAreSoftmaxProbabilities) {
  auto opts = tiny_model_options();
  opts.top_k = 400;
  stam::Classifier classifier(opts);
  auto r = classifier.classify(video_path("short_32frames_30fps.mp4"));
  double sum = 0;
  for (const auto& p : r.top_k) sum += p.score;
  EXPECT_NEAR(sum, 1.0, 1e-4);
  auto logits = torch::tensor(r.logits);
  EXPECT_NEAR(r.top_k[0].score, logits.softmax(0).max().item<double>(), 1e-6);
}

TEST(Pipeline, BatchOfClipsEqualsOneByOne) {
  stam::Classifier classifier(tiny_model_options());
  auto a = classifier.prepare(video_path("short_32frames_30fps.mp4"));
  auto b = classifier.prepare(video_path("mpeg4_320x240_25fps.avi"));
  auto both = classifier.infer({a, b});
  auto one = classifier.infer({b});
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[1].top_k[0].index, one[0].top_k[0].index);
  for (size_t i = 0; i < one[0].logits.size(); ++i)
    ASSERT_NEAR(both[1].logits[i], one[0].logits[i], 1e-4);
}

TEST(Pipeline, LabelCountMustMatchTheCheckpoint) {
  auto opts = tiny_model_options();
  opts.labels = fixture_path("micro_labels.txt");  // 5 names, the checkpoint has 400 classes
  try {
    stam::Classifier c(opts);
    FAIL() << "no error";
  } catch (const stam::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("5 labels"), std::string::npos) << e.what();
  }
}

TEST(Device, ModelThreadsLeaveACoreToEachLease) {
  EXPECT_EQ(stam::model_threads(2, 2, 0), 2);
  EXPECT_EQ(stam::model_threads(2, 2, 1), 1);
  EXPECT_EQ(stam::model_threads(2, 2, 3), 1);  // never none
  EXPECT_EQ(stam::model_threads(8, 8, 2), 6);
  EXPECT_EQ(stam::model_threads(2, 16, 1), 2);  // cores to spare: the threads asked for
  EXPECT_EQ(stam::model_threads(4, 2, 0), 4);   // an oversubscription asked for is kept
}

TEST(Device, MalformedNamesAreUsageErrors) {
  for (const char* name : {"cuda:", "cuda:x", "cuda:-1", "cuda0", "gpu", "CPU", ""})
    EXPECT_THROW(stam::resolve_device(name), stam::UsageError) << name;
}

TEST(Pipeline, UnavailableDeviceOrPrecisionIsADeviceError) {
  auto opts = tiny_model_options();
  if (!torch::cuda::is_available()) {
    opts.device = "cuda:1";
    try {
      stam::Classifier c(opts);
      ADD_FAILURE() << "a missing GPU was accepted";
    } catch (const stam::DeviceError& e) {
      // Says why: a CPU-only LibTorch, or a CUDA one without a GPU or driver.
      const std::string why = at::globalContext().hasCUDART() ? "no GPU found" : "no CUDA support";
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  opts.device = "cpu";
  opts.precision = stam::Precision::kFp16;
  EXPECT_THROW(stam::Classifier{opts}, stam::DeviceError);
}

TEST(Precision, ExplicitIsKeptAndAutoIsResolved) {
  const torch::Device cpu(torch::kCPU);
  const stam::StamConfig config;
  EXPECT_EQ(stam::parse_precision("auto"), stam::Precision::kAuto);
  for (auto p : {stam::Precision::kFp32, stam::Precision::kBf16}) {
    const auto c = stam::choose_precision(cpu, p, config);
    EXPECT_EQ(c.precision, p);
    EXPECT_EQ(c.reason, "requested");
  }
  EXPECT_THROW(stam::check_precision(cpu, stam::Precision::kFp16), stam::DeviceError);
  const auto c = stam::choose_precision(cpu, stam::Precision::kAuto, config);
  EXPECT_NE(c.precision, stam::Precision::kAuto);
  EXPECT_NE(c.precision, stam::Precision::kFp16);
  EXPECT_EQ(c.reason.rfind("auto: ", 0), 0u) << c.reason;
  if (!stam::cpu_info().has("avx512_bf16") && !stam::cpu_info().has("amx_bf16")) {
    EXPECT_EQ(c.precision, stam::Precision::kFp32);
    EXPECT_NE(c.reason.find("no bf16 instructions"), std::string::npos) << c.reason;
  }
}

// The measurement itself, run whatever the CPU: the faster measured precision wins.
TEST(Precision, MeasurementPicksTheFasterRate) {
  const auto c = stam::measure_cpu_precision(64, 128, 256);
  EXPECT_GT(c.fp32_gflops, 0);
  EXPECT_GT(c.bf16_gflops, 0);
  EXPECT_EQ(c.precision, stam::faster_precision(c.fp32_gflops, c.bf16_gflops));
  EXPECT_NE(c.reason.find("GFLOP/s"), std::string::npos) << c.reason;
  // Said after the precision it chose ("bf16 (auto: bf16 measured ...)"), so not repeating it.
  EXPECT_EQ(c.reason.rfind("auto: bf16 measured ", 0), 0u) << c.reason;
}

// bf16 must gain 1.2x: close rates (which a busy machine could order either way from one run to
// the next) keep fp32, so one command gives one precision.
TEST(Precision, Bf16MustBeClearlyFaster) {
  using stam::Precision;
  EXPECT_EQ(stam::faster_precision(193, 170), Precision::kFp32);   // the Intel VM
  EXPECT_EQ(stam::faster_precision(289, 750), Precision::kBf16);   // the Zen 5
  EXPECT_EQ(stam::faster_precision(338, 1765), Precision::kBf16);  // Sapphire Rapids, AMX
  EXPECT_EQ(stam::faster_precision(100, 110), Precision::kFp32);
  EXPECT_EQ(stam::faster_precision(100, 125), Precision::kBf16);
}

TEST(Pipeline, AutoPrecisionRunsAndSaysWhichItChose) {
  auto opts = tiny_model_options();
  opts.precision = stam::Precision::kAuto;
  stam::Classifier classifier(opts);
  auto r = classifier.classify(video_path("short_32frames_30fps.mp4"));
  EXPECT_TRUE(r.precision == "fp32" || r.precision == "bf16") << r.precision;
}

TEST(Pipeline, Bf16RunsOnCpu) {
  auto opts = tiny_model_options();
  opts.precision = stam::Precision::kBf16;
  stam::Classifier classifier(opts);
  auto r = classifier.classify(video_path("short_32frames_30fps.mp4"));
  EXPECT_EQ(r.precision, "bf16");
  EXPECT_EQ(r.top_k.size(), 5u);
}

TEST(Pipeline, ReaderIsHandedOutBeforeTheWeightsLoadAndOutlivesTheClassifier) {
  std::optional<stam::ClipReader> reader;
  auto classifier = std::make_unique<stam::Classifier>(
      tiny_model_options(), [&](const stam::ClipReader& r) { reader.emplace(r); });
  ASSERT_TRUE(reader.has_value());
  const std::string video = video_path("short_32frames_30fps.mp4");
  const auto want = classifier->prepare(video);
  classifier.reset();  // the reader is a value: it reads on without its Classifier
  const auto got = reader->read(video);
  EXPECT_EQ(got.frame_indices, want.frame_indices);
  EXPECT_TRUE(torch::equal(got.pixels, want.pixels));
}

TEST(Pipeline, PrefetchedClipsComeInOrderWithTheirErrors) {
  std::optional<stam::ClipReader> reader;
  stam::Classifier classifier(tiny_model_options(),
                              [&](const stam::ClipReader& r) { reader.emplace(r); });
  const std::string a = video_path("short_32frames_30fps.mp4"),
                    b = video_path("mpeg4_320x240_25fps.avi"),
                    bad = stam::test::source_path("README.md");
  auto clips = stam::prefetch_clips(*reader, {a, bad, b});
  EXPECT_EQ(clips->next().input, a);
  try {
    clips->next();
    ADD_FAILURE() << "a text file must fail to decode";
  } catch (const stam::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("README.md"), std::string::npos) << e.what();
  }
  const auto last = clips->next();
  EXPECT_EQ(last.input, b);
  EXPECT_TRUE(torch::equal(last.pixels, classifier.prepare(b).pixels));
}

// classify_each is `stam classify` without its printing: called here directly, no subprocess.
TEST(ClassifyEach, EveryInputGetsAnOutcomeInOrderAndTheWorstCodeIsReturned) {
  const std::string a = video_path("short_32frames_30fps.mp4"),
                    missing = video_path("no_such_video.mp4"),
                    bad = stam::test::source_path("README.md");
  std::vector<stam::Outcome> seen;
  bool had_classifier = false;
  const int worst = stam::classify_each(tiny_model_options(), {a, missing, bad},
                                        [&](const stam::Outcome& o, const stam::Classifier* c) {
                                          seen.push_back(o);
                                          had_classifier = had_classifier || c != nullptr;
                                        });
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].input, a);
  ASSERT_TRUE(seen[0].result.has_value());
  EXPECT_EQ(seen[0].exit_code, 0);
  stam::Classifier direct(tiny_model_options());
  EXPECT_EQ(seen[0].result->logits, direct.classify(a).logits);
  for (size_t i : {1u, 2u}) {
    EXPECT_FALSE(seen[i].result.has_value()) << seen[i].input;
    EXPECT_EQ(seen[i].exit_code, static_cast<int>(stam::Exit::kInput));
    EXPECT_NE(seen[i].error.find(i == 1 ? "no_such_video" : "README.md"), std::string::npos)
        << seen[i].error;
  }
  EXPECT_TRUE(had_classifier);
  EXPECT_EQ(worst, static_cast<int>(stam::Exit::kInput));
}

TEST(ClassifyEach, NoModelIsLoadedWhenNoInputCanBeRead) {
  stam::ModelOptions options = tiny_model_options();
  options.weights = video_path("no_such_weights.pth");  // loading would throw ModelError
  int calls = 0;
  const int worst = stam::classify_each(options, {video_path("no_such_video.mp4")},
                                        [&](const stam::Outcome& o, const stam::Classifier* c) {
                                          ++calls;
                                          EXPECT_EQ(c, nullptr);
                                          EXPECT_FALSE(o.result.has_value());
                                        });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(worst, static_cast<int>(stam::Exit::kInput));
}
