// stam bench: the library's figures and every output format; never its speed.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "bench/bench.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"

using stam::test::contains;
using stam::test::fixture_path;
using stam::test::lines_of;
using stam::test::run_command;
using stam::test::shell_quote;

namespace {

std::string bench_cmd(const std::string& args) {
  return shell_quote(stam::test::stam_binary()) + " bench --weights " +
         shell_quote(fixture_path("tiny_stam.pth")) + " --iters 2 --warmup 0 " + args;
}

}  // namespace

TEST(Bench, GflopFollowsTheArchitecture) {
  const stam::StamConfig vit_b;  // STAM-16's dimensions
  // By hand: a frame is 196x768x768 (patches) + 12 x (4x197x768^2 + 2x197^2x768 +
  // 2x197x768x3072) = 17,563,060,224 multiply-adds; the temporal encoder over 17 tokens adds
  // 6 x 94,029,312, the head 768x400. x2 for FLOP: 563.147 G (the spec's "~562").
  EXPECT_NEAR(stam::gflop_per_video(vit_b, 16), 563.147, 0.001);
  EXPECT_NEAR(stam::gflop_per_video(vit_b, 64) / stam::gflop_per_video(vit_b, 16), 4.0, 0.01);
  EXPECT_GT(stam::gflop_per_video(vit_b, 16), 16 * stam::gflop_per_video(vit_b, 1) * 0.99);
}

TEST(Bench, FrameListParsesAndRejects) {
  EXPECT_EQ(stam::parse_frame_list("4,8,16"), (std::vector<int64_t>{4, 8, 16}));
  EXPECT_EQ(stam::parse_frame_list("1"), (std::vector<int64_t>{1}));
  for (const char* bad : {"", "0", "4,,8", "4,8,", "x", "-4", "4096000", "8,8"})
    EXPECT_THROW(stam::parse_frame_list(bad), stam::UsageError) << bad;
}

TEST(Bench, PublishedAccuracyAtTheOfficialFrameCounts) {
  EXPECT_DOUBLE_EQ(*stam::published_top1(16), 79.3);
  EXPECT_DOUBLE_EQ(*stam::published_top1(64), 80.5);
  EXPECT_FALSE(stam::published_top1(12).has_value());
}

TEST(Bench, JsonHasSystemAndOneResultPerFrameCount) {
  auto r = run_command(bench_cmd("--frames 2,8 --format json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& sys = j["system"];
  for (const char* k :
       {"cpu", "cpu_features", "threads", "libtorch", "opencv", "device", "precision",
        "gemm_backend", "blas", "gemm_shape", "gemm_gflop_per_s", "floor_gflop_per_s"})
    EXPECT_TRUE(sys.contains(k)) << k;
  EXPECT_GT(sys["gemm_gflop_per_s"].get<double>(), 0);
  EXPECT_GE(sys["floor_gflop_per_s"].get<double>(), sys["gemm_gflop_per_s"].get<double>());
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["frames"], 2);
  EXPECT_EQ(j["results"][1]["frames"], 8);
  for (const auto& row : j["results"]) {
    const double median = row["median_ms"], p90 = row["p90_ms"], min = row["min_ms"];
    EXPECT_GT(min, 0);
    EXPECT_LE(min, median);
    EXPECT_LE(median, p90);
    EXPECT_GT(row["gflop"].get<double>(), 0);
    EXPECT_NEAR(row["gflop_per_s"].get<double>(), row["gflop"].get<double>() / (median / 1e3),
                1e-6 * row["gflop_per_s"].get<double>());
    EXPECT_NEAR(row["videos_per_s"].get<double>(), 1e3 / median, 1e-9 * 1e3 / median);
    EXPECT_NEAR(row["of_floor"].get<double>(), row["floor_ms"].get<double>() / median, 1e-9);
  }
  // The tiny model is not STAM-8, but the published figure is tied to the frame count.
  EXPECT_TRUE(j["results"][0]["published_top1"].is_null());
  EXPECT_DOUBLE_EQ(j["results"][1]["published_top1"].get<double>(), 77.5);
  // Work grows with frames: the spatial encoder is per frame.
  EXPECT_GT(j["results"][1]["gflop"].get<double>(), 3.5 * j["results"][0]["gflop"].get<double>());
}

// GFLOP are per video at any batch size; GFLOP/s and the floor are the whole forward's.
TEST(Bench, GflopIsPerVideoAndRatesCountTheBatch) {
  auto one = run_command(bench_cmd("--frames 4 --format json -q"));
  auto two = run_command(bench_cmd("--frames 4 --batch 2 --format json -q"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto a = nlohmann::json::parse(one.out)["results"][0];
  const auto b = nlohmann::json::parse(two.out)["results"][0];
  EXPECT_DOUBLE_EQ(a["gflop"].get<double>(), b["gflop"].get<double>());
  const double median = b["median_ms"], gflop = b["gflop"];
  EXPECT_NEAR(b["gflop_per_s"].get<double>(), 2 * gflop / (median / 1e3),
              1e-6 * b["gflop_per_s"].get<double>());
  EXPECT_NEAR(b["videos_per_s"].get<double>(), 2e3 / median, 1e-9 * 2e3 / median);
  const double floor_rate = nlohmann::json::parse(two.out)["system"]["floor_gflop_per_s"];
  EXPECT_NEAR(b["floor_ms"].get<double>(), 2 * gflop / floor_rate * 1e3,
              1e-6 * b["floor_ms"].get<double>());
}

// The BLAS is timed only where the model's products could use it (fp32 on CPU); otherwise the
// JSON says null, not a rate of 0, and the text says why.
TEST(Bench, BlasRateIsNullWhereNotTimed) {
  auto r = run_command(bench_cmd("--frames 2 --precision bf16 --format json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["system"]["blas_gemm_gflop_per_s"].is_null()) << r.out;
  r = run_command(bench_cmd("--frames 2 --precision bf16 -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, ": not timed (the model's bf16 products do not use it)")) << r.out;
  r = run_command(bench_cmd("--frames 2 --precision fp32 --format json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(nlohmann::json::parse(r.out)["system"]["blas_gemm_gflop_per_s"].get<double>(), 0);
}

TEST(Bench, TextTableEndsWithTheShareOfTheFloor) {
  auto r = run_command(bench_cmd("--frames 4 --batch 2"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "median ms")) << r.out;
  EXPECT_TRUE(contains(r.out, "GFLOP/s")) << r.out;
  const auto last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  EXPECT_TRUE(contains(last, "% of the floor")) << last;
  EXPECT_TRUE(contains(r.err, "4 frames: median")) << "progress goes to stderr: " << r.err;
}

// The frame counts take turns round by round, so every row is summed up after the last round.
TEST(Bench, FrameCountsTakeTurnsRoundByRound) {
  auto r = run_command(bench_cmd("--frames 4,8"));  // two rounds, no warm-up
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto last_round = r.err.find("round 2 of 2");
  ASSERT_NE(last_round, std::string::npos) << r.err;
  EXPECT_LT(r.err.find("round 1 of 2"), last_round) << r.err;
  EXPECT_GT(r.err.find("4 frames: median"), last_round) << r.err;
  EXPECT_GT(r.err.find("8 frames: median"), last_round) << r.err;
}

TEST(Bench, CsvHasAHeaderAndARowPerFrameCount) {
  auto r = run_command(bench_cmd("--frames 2,4,8 --format csv -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0].rfind("frames,batch,median_ms,", 0), 0u) << lines[0];
  EXPECT_EQ(lines[3].rfind("8,1,", 0), 0u) << lines[3];
  EXPECT_TRUE(contains(lines[3], ",77.500,")) << lines[3];
  EXPECT_TRUE(contains(lines[0], ",floor_ms,of_floor,published_top1,")) << lines[0];
}

TEST(Bench, VideoAddsReadTimesAloneAndBesideTheModel) {
  const std::string video =
      " --video " + shell_quote(stam::test::video_path("short_32frames_30fps.mp4"));
  auto r = run_command(bench_cmd("--frames 4,8 --format json -q" + video));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& row : nlohmann::json::parse(r.out)["results"]) {
    EXPECT_GT(row["decode_ms"].get<double>(), 0);
    EXPECT_GT(row["preprocess_ms"].get<double>(), 0);
    EXPECT_GT(row["with_read_ms"].get<double>(), 0);
  }
  r = run_command(bench_cmd("--frames 4 --format csv -q" + video));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, ",preprocess_ms,with_read_ms\n")) << r.out;
  r = run_command(bench_cmd("--frames 4 -q" + video));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "with read ms")) << r.out;
  const auto last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  EXPECT_TRUE(contains(last, "% of the floor")) << "still the last line: " << last;
}

TEST(Bench, UnreadableVideoFailsBeforeTheWork) {
  stam::test::TempDir dir;
  const std::string bad = dir.file("not_a_video.mp4");
  std::ofstream(bad) << "text";
  auto r = run_command(bench_cmd("--frames 4 -q --video " + shell_quote(bad)));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(contains(r.err, "not_a_video.mp4")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(Bench, PlotsSvgAndPng) {
  stam::test::TempDir dir;
  auto r = run_command(bench_cmd("--frames 2,8,16 -q --plot " + shell_quote(dir.file("p.svg"))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string svg = stam::test::read_file(dir.file("p.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_TRUE(contains(svg, "</svg>"));
  EXPECT_TRUE(contains(svg, "77.50% top-1")) << "STAM-8's published accuracy labels 8 frames";
  EXPECT_TRUE(contains(svg, "79.30% top-1"));
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 20, true);

  r = run_command(bench_cmd("--frames 2,8 -q --plot " + shell_quote(dir.file("p.png"))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const cv::Mat png = cv::imread(dir.file("p.png"));
  ASSERT_FALSE(png.empty());
  EXPECT_EQ(png.cols, 820);
  EXPECT_EQ(png.rows, 500);
  cv::Scalar mean = cv::mean(png);
  EXPECT_LT(mean[0], 254.0) << "something was drawn";
}

TEST(Bench, BadArgumentsAreUsageErrors) {
  stam::test::TempDir dir;
  for (const std::string& args :
       {std::string("--frames 0"), std::string("--frames 4,x"), std::string("--format yaml"),
        "--plot " + shell_quote(dir.file("p.gif")), std::string("--iters 0"),
        std::string("--plot /nonexistent/dir/p.svg"),
        std::string("--plot /proc/p.svg")}) {  // a folder where no file can be made
    auto r = run_command(bench_cmd(args));
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_FALSE(contains(r.err, "round 1 of")) << "refused before the benchmark: " << args;
  }
  auto r = run_command(bench_cmd("--video /nonexistent/v.mp4"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(contains(r.err, "/nonexistent/v.mp4")) << r.err;
}

namespace {

// A report with fixed figures: its plot is the same bytes from one build to the next.
stam::BenchReport fixed_report() {
  stam::BenchReport r;
  r.system.cpu = "Test CPU @ 2.0GHz";
  r.system.device = "cpu";
  r.system.precision = "fp32";
  r.system.threads = 2;
  for (const auto& [frames, ms] : {std::pair<int64_t, double>{8, 812.25}, {16, 1650.5}}) {
    stam::BenchRow row;
    row.frames = frames;
    row.median_ms = ms;
    row.videos_per_s = 1000.0 / ms;
    row.published_top1 = stam::published_top1(frames);
    r.rows.push_back(row);
  }
  return r;
}

}  // namespace

TEST(Bench, PlotOfFixedFiguresIsTheStoredSvg) {
  stam::test::TempDir dir;
  stam::write_bench_plot(fixed_report(), dir.file("p.svg"));
  EXPECT_EQ(stam::test::read_file(dir.file("p.svg")),
            stam::test::read_file(stam::test::source_path("tests/data/bench_plot.svg")));
}
