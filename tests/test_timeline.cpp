// stam timeline: window planning, segments, and the run itself on a long video made by
// concatenating the repository's test videos: every window's logits equal those of classifying
// that window's frames on their own, with each sampled frame encoded once.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "decode/decode.hpp"
#include "pipeline/video_clip.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"
#include "timeline/timeline.hpp"

using stam::test::as_doubles;
using stam::test::fixture_path;
using stam::test::shell_quote;
using stam::test::tiny_model_options;
using stam::test::video_path;

namespace {

// The four test videos, scaled to one size and rate, one after another: about 20 s at 25 fps,
// MPEG-4 in MP4. Made once for the suite.
class LongVideo : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new stam::test::TempDir();
    path_ = dir_->file("long.mp4");
    std::string inputs, filter;
    const char* names[] = {"arm_wrestling_340x256_28fps.mp4", "mpeg4_320x240_25fps.avi",
                           "short_32frames_30fps.mp4", "hd_1920x1080_30fps.mp4"};
    for (int i = 0; i < 4; ++i) {
      inputs += " -i " + shell_quote(video_path(names[i]));
      filter +=
          "[" + std::to_string(i) + ":v]scale=320:240,setsar=1,fps=25[v" + std::to_string(i) + "];";
    }
    filter += "[v0][v1][v2][v3]concat=n=4:v=1:a=0[out]";
    const auto r = stam::test::run_command("ffmpeg -nostdin -loglevel error -y" + inputs +
                                           " -filter_complex " + shell_quote(filter) +
                                           " -map '[out]' -c:v mpeg4 -q:v 4 " + shell_quote(path_));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static stam::test::TempDir* dir_;
  static std::string path_;
};
stam::test::TempDir* LongVideo::dir_ = nullptr;
std::string LongVideo::path_;

}  // namespace

TEST(TimelinePlan, DefaultsGiveTFramesOverTenSecondsAndATwoSecondStride) {
  const stam::WindowPlan p = stam::resolve_window({}, 16);
  EXPECT_EQ(p.frames, 16);
  EXPECT_DOUBLE_EQ(p.fps, 1.6);
  EXPECT_EQ(p.stride, 3);  // 2 s x 1.6 fps = 3.2 samples
}

TEST(TimelinePlan, SecondsAndRateFixTheFrames) {
  stam::WindowRequest r;
  r.window_seconds = 5.0;
  r.fps = 2.0;
  r.stride_seconds = 0.1;
  EXPECT_EQ(stam::requested_window_frames(r), 10);
  const stam::WindowPlan p = stam::resolve_window(r, 16);
  EXPECT_EQ(p.frames, 10);
  EXPECT_DOUBLE_EQ(p.fps, 2.0);
  EXPECT_EQ(p.stride, 1);  // never less than one sample

  stam::WindowRequest frames_only;
  frames_only.window_frames = 8;
  EXPECT_DOUBLE_EQ(stam::resolve_window(frames_only, 16).fps, 0.8);
  stam::WindowRequest seconds_only;
  seconds_only.window_seconds = 4.0;
  EXPECT_EQ(stam::requested_window_frames(seconds_only), std::nullopt);
  EXPECT_DOUBLE_EQ(stam::resolve_window(seconds_only, 16).fps, 4.0);
}

TEST(TimelinePlan, NonPositiveValuesAreUsageErrors) {
  stam::WindowRequest r;
  r.fps = 0.0;
  EXPECT_THROW(stam::resolve_window(r, 16), stam::UsageError);
  r = {};
  r.stride_seconds = -1.0;
  EXPECT_THROW(stam::resolve_window(r, 16), stam::UsageError);
  r = {};
  r.window_frames = 0;
  EXPECT_THROW(stam::requested_window_frames(r), stam::UsageError);
}

// Unbounded, these crashed (a 320 GB tensor for --window-frames 100000), were OOM-killed
// (--fps 1e12 repeats each frame for billions of samples) or overflowed (llround(1e300)).
TEST(TimelinePlan, OutOfRangeValuesAreUsageErrorsSayingTheRange) {
  const auto refused = [](const stam::WindowRequest& r, const std::string& said) {
    try {
      stam::resolve_window(r, 8);
      ADD_FAILURE() << "accepted; want: " << said;
    } catch (const stam::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(said), std::string::npos) << e.what();
    }
  };
  stam::WindowRequest r;
  r.window_frames = 100000;
  refused(r, "--window-frames must be between 1 and 4096, got 100000");
  r = {};
  r.window_seconds = 100000;
  r.fps = 1;
  refused(r,
          "--window-seconds 100000 at --fps 1 is a window of 100000 frames; a window (one "
          "model run) has at most 4096");
  for (const double fps : {1e300, 1e12, 1e-300}) {
    r = {};
    r.fps = fps;
    refused(r, "--fps must be between 0.001 and 1000 samples per second");
  }
  r = {};
  r.window_seconds = 1e-300;  // 8 frames in it: 8e300 samples per second
  refused(r,
          "windows of 8 frames over 1e-300 s are a sample rate of 8e+300 fps; it must be "
          "between 0.001 and 1000 samples per second");
  r = {};
  r.stride_seconds = 1e300;
  refused(r, "--stride-seconds must be a positive number of seconds up to 1000000, got 1e+300");

  // The bounds themselves are taken.
  r = {};
  r.window_frames = stam::kMaxWindowFrames;
  r.fps = stam::kMaxFps;
  r.stride_seconds = stam::kMaxStrideSeconds;
  const stam::WindowPlan p = stam::resolve_window(r, 8);
  EXPECT_EQ(p.frames, 4096);
  EXPECT_EQ(p.stride, 1000000000);
  r = {};
  r.fps = stam::kMinFps;
  EXPECT_EQ(stam::resolve_window(r, 8).fps, 0.001);
}

TEST(TimelinePlan, AWindowRoundedToWholeFramesIsLogged) {
  std::ostringstream log;
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_st>(log)));
  stam::WindowRequest r;
  r.window_seconds = 1.0;
  r.fps = 0.3;
  const stam::WindowPlan p = stam::resolve_window(r, 8);
  r.window_seconds = 5.0;
  r.fps = 3.2;  // 16 frames, exactly 5 s: nothing to say
  stam::resolve_window(r, 8);
  spdlog::set_default_logger(previous);
  EXPECT_EQ(p.frames, 1);
  EXPECT_NE(log.str().find("--window-seconds 1 at --fps 0.3 rounds to windows of 1 frame, 3.33 s "
                           "long"),
            std::string::npos)
      << log.str();
  EXPECT_EQ(stam::test::lines_of(log.str()).size(), 1u) << log.str();
}

TEST(TimelinePlan, WindowStartsCoverTheEnd) {
  using V = std::vector<int64_t>;
  EXPECT_EQ(stam::window_starts(10, 4, 3), (V{0, 3, 6}));
  EXPECT_EQ(stam::window_starts(11, 4, 3), (V{0, 3, 6, 7}));  // closing window at the end
  EXPECT_EQ(stam::window_starts(3, 4, 2), (V{0}));            // shorter than one window
  EXPECT_EQ(stam::window_starts(4, 4, 2), (V{0}));
}

TEST(TimelineSegments, RunsOfTheSameTopLabelMergeWithoutOverlap) {
  auto window = [](double start, int64_t index, double score) {
    stam::TimelineWindow w;
    w.start_s = start;
    w.end_s = start + 4;
    w.top_k = {{index, "class " + std::to_string(index), score}};
    return w;
  };
  const auto segments = stam::merge_segments(
      {window(0, 7, 0.5), window(1, 7, 0.7), window(2, 3, 0.9), window(3, 7, 0.4)});
  ASSERT_EQ(segments.size(), 3u);
  EXPECT_EQ(segments[0].index, 7);
  EXPECT_DOUBLE_EQ(segments[0].start_s, 0);
  EXPECT_DOUBLE_EQ(segments[0].end_s, 2);  // where the next run starts
  EXPECT_EQ(segments[0].windows, 2);
  EXPECT_NEAR(segments[0].score, 0.6, 1e-12);
  EXPECT_EQ(segments[1].label, "class 3");
  EXPECT_DOUBLE_EQ(segments[1].end_s, 3);
  EXPECT_DOUBLE_EQ(segments[2].start_s, 3);
  EXPECT_DOUBLE_EQ(segments[2].end_s, 7);  // the last run ends with its window
}

TEST_F(LongVideo, EveryWindowEqualsClassifyingItsFramesAlone) {
  stam::Classifier c(tiny_model_options());
  stam::WindowRequest r;
  r.fps = 2.0;
  r.stride_seconds = 1.0;
  const stam::WindowPlan plan = stam::resolve_window(r, c.config().frames);
  ASSERT_EQ(plan.frames, 8);
  ASSERT_EQ(plan.stride, 2);
  const stam::Timeline t = stam::run_timeline(c, path_, plan);

  // Counted apart from the code under test; a sample every 12.5 frames (25 fps / 2 fps).
  cv::VideoCapture cap(path_, cv::CAP_FFMPEG);
  int64_t n = 0;
  while (cap.grab()) ++n;
  ASSERT_GT(n, 450);
  EXPECT_EQ(t.frame_count, n);
  const auto samples = static_cast<int64_t>(std::ceil(static_cast<double>(n) / 12.5));
  EXPECT_EQ(t.samples, samples);
  std::set<int64_t> distinct;
  std::vector<int64_t> starts;
  double worst = 0;
  for (const auto& w : t.windows) {
    ASSERT_EQ(w.frame_indices.size(), 8u);
    const auto start = static_cast<int64_t>(std::llround(w.start_s * plan.fps));
    starts.push_back(start);
    for (int64_t j = 0; j < 8; ++j) {
      const int64_t want = static_cast<int64_t>(std::floor((start + j) * 12.5));
      EXPECT_EQ(w.frame_indices[static_cast<size_t>(j)], want);
      distinct.insert(want);
    }
    stam::Clip clip;
    clip.input = path_;
    clip.pixels = stam::preprocess_frames(stam::read_frames_at(path_, w.frame_indices).images,
                                          c.config().image_size, c.device());
    const stam::Result alone = c.infer({clip}).front();
    const double err = stam::test::relative_error(as_doubles(w.logits), as_doubles(alone.logits));
    worst = std::max(worst, err);
    EXPECT_LE(err, 1e-5) << "window at " << w.start_s << " s";
    EXPECT_EQ(w.top_k.front().index, alone.top_k.front().index);
  }
  RecordProperty("worst_relative_error", stam::test::sci(worst));
  EXPECT_EQ(starts, stam::window_starts(samples, 8, 2));
  EXPECT_EQ(t.frames_encoded, static_cast<int64_t>(distinct.size()));
  EXPECT_EQ(t.frames_encoded, samples);
  ASSERT_FALSE(t.segments.empty());
  EXPECT_DOUBLE_EQ(t.segments.front().start_s, 0.0);
  EXPECT_DOUBLE_EQ(t.segments.back().end_s, static_cast<double>(n) / 25.0);  // the video's end
}

TEST_F(LongVideo, WithoutReuseTheLogitsAreTheSameAndEveryWindowIsEncoded) {
  stam::Classifier c(tiny_model_options());
  stam::WindowRequest r;
  r.fps = 1.0;
  r.stride_seconds = 3.0;
  const stam::WindowPlan plan = stam::resolve_window(r, c.config().frames);
  const stam::Timeline reuse = stam::run_timeline(c, path_, plan, true);
  const stam::Timeline fresh = stam::run_timeline(c, path_, plan, false);
  ASSERT_EQ(reuse.windows.size(), fresh.windows.size());
  for (size_t i = 0; i < reuse.windows.size(); ++i) {
    EXPECT_EQ(reuse.windows[i].frame_indices, fresh.windows[i].frame_indices);
    EXPECT_LE(stam::test::relative_error(as_doubles(reuse.windows[i].logits),
                                         as_doubles(fresh.windows[i].logits)),
              1e-5);
  }
  EXPECT_EQ(reuse.frames_encoded, reuse.samples);
  EXPECT_EQ(fresh.frames_encoded, static_cast<int64_t>(fresh.windows.size()) * plan.frames);
}

// Seconds to the millisecond and timings to the tenth print as such: rounding by multiplying
// with 0.1 printed a total of 866.8 ms as 866.8000000000001.
TEST(TimelineJson, RoundedNumbersPrintShort) {
  stam::Timeline t;
  stam::TimelineWindow w;
  w.start_s = 0.1 + 0.2;  // 0.30000000000000004
  w.end_s = 4.3000004;
  w.top_k = {{7, "class 7", 0.5}};
  t.windows = {w};
  t.segments = stam::merge_segments(t.windows);
  t.timings.total_ms = 866.79999;
  t.timings.decode_ms = 321.64;
  t.timings.temporal_ms = 9.15;
  const auto j = stam::timeline_json(t, false);
  EXPECT_EQ(j["windows"][0]["start_s"].dump(), "0.3");
  EXPECT_EQ(j["windows"][0]["end_s"].dump(), "4.3");
  EXPECT_EQ(j["segments"][0]["end_s"].dump(), "4.3");
  EXPECT_EQ(j["timings_ms"]["total"].dump(), "866.8");
  EXPECT_EQ(j["timings_ms"]["decode"].dump(), "321.6");
}

TEST(TimelineText, NamesThePrecisionAndCountsOneWindowAndOneSampleAsOne) {
  stam::Timeline t;
  stam::TimelineWindow w;
  w.top_k = {{7, "class 7", 0.5}};
  t.windows = {w};
  t.segments = stam::merge_segments(t.windows);
  t.plan.frames = 8;
  t.frames_encoded = 8;
  t.device = "cpu";
  t.precision = "bf16";
  t.plan.stride = 1;
  const std::string text = stam::timeline_text(t);
  EXPECT_NE(text.find("frames encoded: 8 for 1 window x 8 = 8 window frames"), std::string::npos)
      << text;
  EXPECT_NE(text.find(", one every 1 sample ("), std::string::npos) << text;
  EXPECT_NE(text.find(" ms | cpu bf16\n"), std::string::npos) << text;
  EXPECT_EQ(stam::timeline_json(t, false)["precision"], "bf16");
}

TEST(Timeline, FramesTakenTwiceAreEncodedOnce) {
  stam::Classifier c(tiny_model_options());
  stam::WindowRequest r;
  r.fps = 60.0;  // twice the video's 30 fps
  const stam::Timeline t =
      stam::run_timeline(c, video_path("short_32frames_30fps.mp4"), stam::resolve_window(r, 8));
  EXPECT_EQ(t.samples, 64);
  EXPECT_EQ(t.frames_encoded, 32);
  ASSERT_FALSE(t.windows.empty());
  EXPECT_EQ(t.windows.front().frame_indices, (std::vector<int64_t>{0, 0, 1, 1, 2, 2, 3, 3}));
  EXPECT_EQ(t.warnings, std::vector<std::string>{
                            "sampling at 60 fps, above the video's 30 fps: frames repeat within "
                            "windows"});
}

TEST(Timeline, AVideoShorterThanAWindowGetsOnePaddedWindow) {
  stam::Classifier c(tiny_model_options());
  stam::WindowRequest r;
  r.fps = 2.0;  // 72 frames at 28 fps, 2.57 s: 6 samples for a window of 8
  const stam::Timeline t =
      stam::run_timeline(c, video_path("hd_1920x1080_30fps.mp4"), stam::resolve_window(r, 8));
  ASSERT_EQ(t.windows.size(), 1u);
  EXPECT_EQ(t.windows[0].frame_indices, (std::vector<int64_t>{0, 14, 28, 42, 56, 70, 70, 70}));
  EXPECT_EQ(t.frames_encoded, 6);
  EXPECT_DOUBLE_EQ(t.windows[0].end_s, 72 / t.video_fps);  // the video's end, not 8 / 2 s
  EXPECT_LT(t.windows[0].end_s, 3.0);
  // Said, as classify says it of a clip with repeated frames.
  EXPECT_EQ(t.warnings, std::vector<std::string>{
                            "the video is too short for a window of 8 samples at 2 fps: only 6 "
                            "distinct frames, some used more than once"});
}

TEST(TimelineCli, AVideoOfThreeFramesSaysItWasPadded) {
  stam::test::TempDir tmp;
  const std::string video = tmp.file("short3.mp4");
  const auto made = stam::test::run_command(
      "ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=size=64x48:rate=10 -frames:v 3 "
      "-c:v libx264 -pix_fmt yuv420p " +
      shell_quote(video));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto r = stam::test::run_command(
      shell_quote(stam::test::stam_binary()) + " timeline " + shell_quote(video) + " --weights " +
      shell_quote(fixture_path("tiny_stam.pth")) + " --device cpu --format json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["windows"].size(), 1u);
  EXPECT_EQ(j["windows"][0]["frame_indices"], nlohmann::json({0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(j["warnings"], nlohmann::json::array({"the video is too short for a window of 8 "
                                                  "samples at 0.8 fps: only 1 distinct frame, "
                                                  "some used more than once"}));
}

TEST(Timeline, AModelRunningOtherWindowsIsRefused) {
  stam::Classifier c(tiny_model_options());
  stam::WindowPlan plan{16, 1.6, 3};
  EXPECT_THROW(stam::run_timeline(c, video_path("short_32frames_30fps.mp4"), plan),
               stam::UsageError);
}

TEST(Timeline, AMissingVideoIsAnInputErrorNamingIt) {
  stam::Classifier c(tiny_model_options());
  try {
    stam::run_timeline(c, "/nonexistent/long.mp4", stam::resolve_window({}, 8));
    FAIL() << "no error";
  } catch (const stam::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/long.mp4"), std::string::npos);
  }
}

// ---- CLI ----

namespace {

std::string timeline_model_flags() {
  return " --weights " + shell_quote(fixture_path("tiny_stam.pth")) + " --device cpu";
}

}  // namespace

TEST(TimelineCli, JsonHasWindowsAndSegments) {
  const auto r = stam::test::run_command(shell_quote(stam::test::stam_binary()) + " timeline " +
                                         shell_quote(video_path("mpeg4_320x240_25fps.avi")) +
                                         timeline_model_flags() +
                                         " --fps 2 --stride-seconds 1 -k 3 --format json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["input"], video_path("mpeg4_320x240_25fps.avi"));
  EXPECT_EQ(j["window_frames"], 8);
  EXPECT_EQ(j["samples"], 14);  // 164 frames at 25 fps: positions 0, 12, ..., 162
  EXPECT_EQ(j["frames_encoded"], 14);
  ASSERT_EQ(j["windows"].size(), 4u);  // starts 0, 2, 4, 6
  EXPECT_EQ(j["windows"][0]["top_k"].size(), 3u);
  EXPECT_DOUBLE_EQ(j["windows"][1]["start_s"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["windows"][1]["end_s"].get<double>(), 5.0);
  EXPECT_FALSE(j["segments"].empty());
  EXPECT_FALSE(j.contains("warnings"));  // a clean video
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_TRUE(j["precision"] == "fp32" || j["precision"] == "bf16") << j["precision"];
}

TEST(TimelineCli, OutOfRangeWindowsAreRefusedBeforeTheModelLoads) {
  // No weights: a run that got as far as loading them would fail with exit 4.
  const std::string run = shell_quote(stam::test::stam_binary()) + " timeline " +
                          shell_quote(video_path("mpeg4_320x240_25fps.avi")) +
                          " --weights /nonexistent/stam.pth --device cpu";
  for (const std::string flags : {" --window-frames 100000", " --window-seconds 100000 --fps 1",
                                  " --fps 1e12", " --stride-seconds 1e300"}) {
    const auto r = stam::test::run_command(run + flags);
    EXPECT_EQ(r.exit_code, 2) << flags << ": " << r.err;
    EXPECT_NE(r.err.find(flags.substr(1, flags.find(' ', 1) - 1)), std::string::npos)
        << flags << ": " << r.err;
  }
}

TEST(TimelineCli, AMissingInputOrAZeroStrideIsRefusedBeforeTheModelLoads) {
  // These weights do not exist: a run that loads them first fails with exit 4 instead.
  const std::string run = shell_quote(stam::test::stam_binary()) +
                          " timeline --weights /nonexistent/stam.pth --device cpu ";
  const auto missing = stam::test::run_command(run + "/nonexistent/long.mp4");
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_NE(missing.err.find("/nonexistent/long.mp4"), std::string::npos) << missing.err;
  const auto stride = stam::test::run_command(
      run + shell_quote(video_path("mpeg4_320x240_25fps.avi")) + " --stride-seconds 0");
  EXPECT_EQ(stride.exit_code, 2) << stride.err;
  EXPECT_NE(stride.err.find("--stride-seconds must be a positive number"), std::string::npos)
      << stride.err;
}

TEST(TimelineCli, DecodeWarningsTravelWithTheTimeline) {
  // 40 frames at 10 fps tagged to be turned by 90 degrees (ffmpeg -c copy -metadata:s:v:0
  // rotate=90): the frames are rotated, and the result must say so, as classify's does.
  stam::test::TempDir tmp;
  const std::string plain = tmp.file("plain.mp4"), rotated = tmp.file("rotated.mp4");
  for (const std::string& args :
       {"-f lavfi -i testsrc=size=160x90:rate=10 -frames:v 40 -c:v libx264 -pix_fmt yuv420p " +
            shell_quote(plain),
        "-i " + shell_quote(plain) + " -c copy -metadata:s:v:0 rotate=90 " +
            shell_quote(rotated)}) {
    const auto f = stam::test::run_command("ffmpeg -nostdin -loglevel error -y " + args);
    ASSERT_EQ(f.exit_code, 0) << f.err;
  }
  const std::string run = shell_quote(stam::test::stam_binary()) + " timeline " +
                          shell_quote(rotated) + timeline_model_flags() + " --fps 2 -q";
  const std::string said = "frames were rotated by 90 degrees as the file's rotation metadata asks";
  const auto json = stam::test::run_command(run + " --format json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["warnings"], nlohmann::json::array({said}));
  const auto text = stam::test::run_command(run);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("warnings:\n  - " + said), std::string::npos) << text.out;
}

TEST(TimelineCli, CsvHasAHeaderAndARowPerWindow) {
  const auto r = stam::test::run_command(
      shell_quote(stam::test::stam_binary()) + " timeline " +
      shell_quote(video_path("mpeg4_320x240_25fps.avi")) + timeline_model_flags() +
      " --window-frames 8 --window-seconds 4 --fps 1 --format csv -q");
  EXPECT_EQ(r.exit_code, 2) << "4 s at 1 fps is not a window of 8 frames";
  EXPECT_NE(r.err.find("is a window of 4 frames, not --window-frames 8; give two of the three"),
            std::string::npos)
      << r.err;
  const auto ok = stam::test::run_command(
      shell_quote(stam::test::stam_binary()) + " timeline " +
      shell_quote(video_path("mpeg4_320x240_25fps.avi")) + timeline_model_flags() +
      " --window-seconds 4 --stride-seconds 1 -k 2 --format csv -q");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out.substr(0, ok.out.find('\n')), "start_s,end_s,label_1,score_1,label_2,score_2");
  // 6.56 s at 2 fps (8 frames over 4 s): 14 samples, windows at 0, 2, 4, 6.
  EXPECT_EQ(std::count(ok.out.begin(), ok.out.end(), '\n'), 5);
  EXPECT_NE(ok.out.find("\n1.000,5.000,"), std::string::npos) << ok.out;
}

TEST(TimelineCli, CsvHasAsManyLabelColumnsAsTheModelHasClasses) {
  // -k 10 on a model of 5 classes gave empty columns up to label_10; JSON and classify give 5.
  const auto r = stam::test::run_command(
      shell_quote(stam::test::stam_binary()) + " timeline " +
      shell_quote(video_path("mpeg4_320x240_25fps.avi")) + " --weights " +
      shell_quote(fixture_path("micro_ok.pth")) + " --labels " +
      shell_quote(fixture_path("micro_labels.txt")) + " --device cpu -k 10 --format csv -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = stam::test::lines_of(r.out);
  ASSERT_GE(rows.size(), 2u) << r.out;
  EXPECT_EQ(rows[0],
            "start_s,end_s,label_1,score_1,label_2,score_2,label_3,score_3,label_4,score_4,"
            "label_5,score_5");
  for (const auto& row : rows) EXPECT_EQ(std::count(row.begin(), row.end(), ','), 11) << row;
}

TEST(TimelineCli, BadInputsGiveDocumentedExitCodes) {
  const std::string stam = shell_quote(stam::test::stam_binary()) + " timeline ";
  const auto missing = stam::test::run_command(stam + "/nonexistent.mp4" + timeline_model_flags());
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("/nonexistent.mp4"), std::string::npos) << missing.err;
  const auto zero_fps =
      stam::test::run_command(stam + shell_quote(video_path("mpeg4_320x240_25fps.avi")) +
                              timeline_model_flags() + " --fps 0");
  EXPECT_EQ(zero_fps.exit_code, 2);
  EXPECT_NE(zero_fps.err.find("--fps"), std::string::npos) << zero_fps.err;
  const auto contradiction =
      stam::test::run_command(stam + shell_quote(video_path("mpeg4_320x240_25fps.avi")) +
                              timeline_model_flags() + " --frames 8 --window-frames 4");
  EXPECT_EQ(contradiction.exit_code, 2);
  // --logits has a place in JSON only: refused, not silently ignored, before the model loads.
  for (const std::string format : {"text", "csv"}) {
    const auto r =
        stam::test::run_command(stam + shell_quote(video_path("mpeg4_320x240_25fps.avi")) +
                                " --weights /nonexistent/stam.pth --logits --format " + format);
    EXPECT_EQ(r.exit_code, 2) << format << ": " << r.err;
    EXPECT_NE(r.err.find("--logits needs --format json: the " + format + " output has no place"),
              std::string::npos)
        << r.err;
  }
  // Clip sampling options do not apply to a timeline: refused, not silently ignored.
  for (const char* flag : {" --seek keyframe", " --sampling reference"}) {
    const auto r = stam::test::run_command(
        stam + shell_quote(video_path("mpeg4_320x240_25fps.avi")) + timeline_model_flags() + flag);
    EXPECT_EQ(r.exit_code, 2) << flag;
    EXPECT_NE(r.err.find(std::string(flag).substr(1, std::string(flag).find(' ', 1) - 1) +
                         " does not apply to timeline"),
              std::string::npos)
        << r.err;
  }
}

TEST(TimelineCli, HelpSaysWhatFramesIsHereWithOneBlankLineBeforeTheExitCodes) {
  const auto r =
      stam::test::run_command(shell_quote(stam::test::stam_binary()) + " timeline --help");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto frames = r.out.find("-f,--frames");
  ASSERT_NE(frames, std::string::npos) << r.out;
  // The description, on the option's line or the next.
  EXPECT_EQ(r.out.find("window length in sampled frames, as --window-frames", frames),
            r.out.find_first_not_of(' ', r.out.find('\n', frames) + 1))
      << r.out;
  EXPECT_EQ(r.out.find("frames per video"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n\nExit codes:"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\n\n\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--seek"), std::string::npos) << "hidden: " << r.out;
}

// timeline_of is `stam timeline`'s run without its printing: called here directly.
TEST(TimelineOf, LoadsWithTheWindowsTAndEqualsRunTimeline) {
  const std::string video = video_path("arm_wrestling_340x256_28fps.mp4");
  stam::WindowRequest window;
  window.window_frames = 4;
  window.stride_seconds = 1;
  const stam::Timeline got = stam::timeline_of(tiny_model_options(), video, window);
  stam::ModelOptions four = tiny_model_options();
  four.frames = 4;
  stam::Classifier c(four);
  const stam::Timeline want = stam::run_timeline(c, video, stam::resolve_window(window, 4));
  ASSERT_EQ(got.windows.size(), want.windows.size());
  ASSERT_FALSE(got.windows.empty());
  for (size_t i = 0; i < got.windows.size(); ++i) {
    EXPECT_EQ(got.windows[i].frame_indices, want.windows[i].frame_indices);
    EXPECT_EQ(got.windows[i].logits, want.windows[i].logits);
  }
}

TEST(TimelineOf, RefusesBeforeLoadingWhatTheModelCannotChange) {
  stam::ModelOptions options = tiny_model_options();
  options.weights = video_path("no_such_weights.pth");  // a load would be a ModelError
  stam::WindowRequest window;
  window.window_frames = 4;
  options.frames = 8;
  EXPECT_THROW(stam::timeline_of(options, video_path("arm_wrestling_340x256_28fps.mp4"), window),
               stam::UsageError);
  EXPECT_THROW(stam::timeline_of(options, video_path("no_such_video.mp4"), window),
               stam::InputError);
}
