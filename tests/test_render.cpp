// Labels drawn on frames (render/overlay.hpp), the video writer, and what timeline --render and
// --plot make of a timeline.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <filesystem>

#include "render/canvas.hpp"
#include "render/overlay.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"
#include "timeline/timeline.hpp"

using stam::test::contains;
using stam::test::fixture_path;
using stam::test::shell_quote;
using stam::test::tiny_model_options;
using stam::test::video_path;

namespace {

const cv::Scalar kGray(120, 130, 140);

std::vector<stam::Prediction> predictions(size_t n) {
  const char* names[] = {"arm wrestling", "abseiling", "yoga", "juggling balls", "surfing water"};
  std::vector<stam::Prediction> p;
  for (size_t i = 0; i < n; ++i) p.push_back({int64_t(i), names[i % 5], 0.9 / double(i + 1)});
  return p;
}

// Pixels of `a` and `b` that differ, inside and outside `box`.
std::pair<int, int> changed_inside_outside(const cv::Mat& a, const cv::Mat& b, cv::Rect box) {
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  cv::Mat gray;
  cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
  const int inside = cv::countNonZero(gray(box));
  return {inside, cv::countNonZero(gray) - inside};
}

}  // namespace

TEST(Overlay, DarkensAndWritesInsideTheBoxAtTheTopLeftAndNothingOutside) {
  const cv::Mat before(240, 320, CV_8UC3, kGray);
  cv::Mat frame = before.clone();
  stam::draw_overlay(frame, predictions(3), "t=12.4 s");
  const cv::Rect box = stam::overlay_box(frame.size(), predictions(3), "t=12.4 s");
  EXPECT_EQ(box.tl(), cv::Point(0, 0));
  EXPECT_GT(box.width, 60);
  EXPECT_LT(box.width, 320);
  EXPECT_LT(box.height, 240);
  const auto [inside, outside] = changed_inside_outside(before, frame, box);
  EXPECT_EQ(outside, 0);
  EXPECT_EQ(inside, box.area()) << "the whole box is darkened";
  EXPECT_LT(cv::mean(frame(box))[0], 120 * 0.6);
  // White text: some pixels in the box are brighter than the frame was.
  cv::Mat bright;
  cv::inRange(frame(box), cv::Scalar(200, 200, 200), cv::Scalar(255, 255, 255), bright);
  EXPECT_GT(cv::countNonZero(bright), 50);
}

TEST(Overlay, MoreLinesMakeATallerBoxAndATallerFrameALargerOne) {
  const cv::Size small(320, 240), hd(1920, 1080);
  const cv::Rect one = stam::overlay_box(small, predictions(1));
  const cv::Rect five = stam::overlay_box(small, predictions(5));
  const cv::Rect captioned = stam::overlay_box(small, predictions(5), "t=1.0 s");
  EXPECT_GT(five.height, one.height);
  EXPECT_GT(captioned.height, five.height);
  const cv::Rect big = stam::overlay_box(hd, predictions(5), "t=1.0 s");
  EXPECT_GT(big.height, 3 * captioned.height);
  // The same share of the frame's height at both sizes, within the rounding of whole pixels.
  EXPECT_NEAR(double(big.height) / 1080, double(captioned.height) / 240, 0.03);
  EXPECT_LT(big.height, 1080 / 2);
}

TEST(Overlay, NothingToShowDrawsNothing) {
  const cv::Mat before(240, 320, CV_8UC3, kGray);
  cv::Mat frame = before.clone();
  stam::draw_overlay(frame, {});
  EXPECT_TRUE(stam::overlay_box(frame.size(), {}).empty());
  EXPECT_EQ(cv::countNonZero(cv::Mat(frame != before).reshape(1)), 0);
}

TEST(Overlay, TinyFramesGetWhatFitsAndOtherTypesAreRefused) {
  for (const cv::Size size : {cv::Size(1, 1), cv::Size(8, 8), cv::Size(100, 2), cv::Size(2, 100)}) {
    cv::Mat frame(size, CV_8UC3, kGray);
    stam::draw_overlay(frame, predictions(5), "t=0.0 s");
    const cv::Rect box = stam::overlay_box(size, predictions(5), "t=0.0 s");
    // The box a frame as high but wide enough would get, cut to the frame.
    const cv::Rect unclipped = stam::overlay_box({10000, size.height}, predictions(5), "t=0.0 s");
    EXPECT_EQ(box, unclipped & cv::Rect(0, 0, size.width, size.height)) << size;
    EXPECT_FALSE(box.empty()) << size;
  }
  cv::Mat gray(240, 320, CV_8UC1, cv::Scalar(100));
  EXPECT_THROW(stam::draw_overlay(gray, predictions(1)), stam::UsageError);
}

TEST(VideoWriter, WritesEveryFrameAtItsSizeAndRateInTheOrderGiven) {
  stam::test::TempDir dir;
  const std::string path = dir.file("out.mp4");
  {
    stam::VideoWriter w(path, 10.0, {64, 48});
    const cv::Mat red(48, 64, CV_8UC3, cv::Scalar(255, 0, 0));  // RGB
    for (int i = 0; i < 12; ++i) w.write(red);
    w.write(cv::Mat(96, 128, CV_8UC3, cv::Scalar(255, 0, 0)));  // resized to 64x48
    w.close();
    EXPECT_EQ(w.frames(), 13);
    EXPECT_THROW(w.write(red), stam::UsageError);
  }
  cv::VideoCapture cap(path);
  ASSERT_TRUE(cap.isOpened());
  EXPECT_EQ(cap.get(cv::CAP_PROP_FRAME_WIDTH), 64);
  EXPECT_EQ(cap.get(cv::CAP_PROP_FRAME_HEIGHT), 48);
  EXPECT_NEAR(cap.get(cv::CAP_PROP_FPS), 10.0, 1e-6);
  int frames = 0;
  cv::Mat bgr, last;
  while (cap.read(bgr)) ++frames, last = bgr.clone();
  EXPECT_EQ(frames, 13);
  const cv::Scalar mean = cv::mean(last);
  EXPECT_GT(mean[2], 200) << "red, as the RGB frames were";
  EXPECT_LT(mean[0], 50);
}

TEST(VideoWriter, PathsThatCannotBeWrittenAreUsageErrorsNamingThem) {
  stam::test::TempDir dir;
  std::filesystem::create_directory(dir.file("folder.mp4"));
  for (const std::string& path : {std::string("/nonexistent/dir/out.mp4"), dir.file("out.gif"),
                                  dir.file("folder.mp4"), std::string("/proc/out.mp4")}) {
    try {
      stam::VideoWriter w(path, 25.0, {64, 48});
      ADD_FAILURE() << path << ": opened";
    } catch (const stam::UsageError& e) {
      EXPECT_TRUE(contains(e.what(), path)) << e.what();
      EXPECT_TRUE(contains(e.what(), "--render")) << e.what();
    }
  }
}

// ---- timeline --render and --plot ----

namespace {

// 164 frames at 25 fps, 320x240: windows of 8 samples at 2 fps starting every second.
class RenderedTimeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stam::Classifier c(tiny_model_options());
    stam::WindowRequest r;
    r.fps = 2.0;
    r.stride_seconds = 1.0;
    timeline_ = new stam::Timeline(
        stam::run_timeline(c, video_path("mpeg4_320x240_25fps.avi"), stam::resolve_window(r, 8)));
  }
  static void TearDownTestSuite() { delete timeline_; }
  static stam::Timeline* timeline_;
};
stam::Timeline* RenderedTimeline::timeline_ = nullptr;

}  // namespace

TEST(TimelineRender, EachTimeTakesTheLatestWindowStartedByThen) {
  std::vector<stam::TimelineWindow> w(3);
  w[0].start_s = 0;
  w[1].start_s = 2;
  w[2].start_s = 4;
  EXPECT_EQ(stam::window_at(w, 0.0), 0u);
  EXPECT_EQ(stam::window_at(w, 1.99), 0u);
  EXPECT_EQ(stam::window_at(w, 2.0), 1u);
  EXPECT_EQ(stam::window_at(w, 100.0), 2u);
  w[0].start_s = 0.5;  // a time before every start takes the first window
  EXPECT_EQ(stam::window_at(w, 0.1), 0u);
}

TEST_F(RenderedTimeline, TheVideoHasTheInputsFramesWithTheLabelsInTheBoxOnly) {
  const stam::Timeline& t = *timeline_;
  ASSERT_EQ(t.windows.size(), 4u);
  stam::test::TempDir dir;
  const std::string out = dir.file("labelled.mp4");
  EXPECT_EQ(stam::render_timeline(t, t.input, out), 164);
  cv::VideoCapture in(t.input), rendered(out);
  ASSERT_TRUE(rendered.isOpened());
  EXPECT_EQ(rendered.get(cv::CAP_PROP_FRAME_COUNT), 164);
  EXPECT_NEAR(rendered.get(cv::CAP_PROP_FPS), 25.0, 1e-6);
  const cv::Rect box =
      stam::overlay_box({320, 240}, t.windows[0].top_k, "t=0.0 s");  // the widest caption
  const cv::Rect far(200, 150, 120, 90);  // the bottom right, away from the box
  ASSERT_TRUE((box & far).empty());
  int frames = 0;
  for (cv::Mat a, b; in.read(a) && rendered.read(b); ++frames) {
    ASSERT_EQ(b.size(), cv::Size(320, 240));
    cv::Mat diff;
    cv::absdiff(a, b, diff);
    const double in_box = cv::mean(diff(box & cv::Rect(0, 0, box.width, box.height / 2)))[0];
    const double away = cv::mean(diff(far))[0];
    EXPECT_GT(in_box, 25) << "frame " << frames;
    EXPECT_LT(away, 6) << "frame " << frames;
  }
  EXPECT_EQ(frames, 164);
  cv::Mat extra;
  EXPECT_FALSE(rendered.read(extra));
}

TEST_F(RenderedTimeline, TheSvgPlotHasALineAndALegendEntryPerLeadingLabel) {
  const stam::Timeline& t = *timeline_;
  const std::vector<int64_t> leading = stam::leading_labels(t);
  ASSERT_FALSE(leading.empty());
  EXPECT_LE(leading.size(), stam::kMaxPlotLabels);
  for (const auto& w : t.windows) {
    if (leading.size() < stam::kMaxPlotLabels) {
      EXPECT_NE(std::find(leading.begin(), leading.end(), w.top_k.front().index), leading.end());
    }
  }
  stam::test::TempDir dir;
  stam::write_timeline_plot(t, dir.file("p.svg"));
  const std::string svg = stam::test::read_file(dir.file("p.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  size_t polylines = 0;
  for (size_t at = 0; (at = svg.find("<polyline", at)) != std::string::npos; ++at) ++polylines;
  EXPECT_EQ(polylines, leading.size());
  for (const auto& s : t.segments) EXPECT_TRUE(contains(svg, ">" + s.label + "</text>")) << s.label;
  EXPECT_TRUE(contains(svg, "time (s)"));
  EXPECT_TRUE(contains(svg, "mpeg4_320x240_25fps.avi"));
}

TEST_F(RenderedTimeline, ThePngPlotDecodesAtItsSize) {
  stam::test::TempDir dir;
  stam::write_timeline_plot(*timeline_, dir.file("p.png"));
  const cv::Mat png = cv::imread(dir.file("p.png"));
  ASSERT_FALSE(png.empty());
  EXPECT_EQ(png.size(), cv::Size(900, 380));
  EXPECT_LT(cv::mean(png)[0], 254.0) << "something was drawn";
  EXPECT_THROW(stam::write_timeline_plot(*timeline_, dir.file("p.gif")), stam::UsageError);
}

TEST(TimelinePlot, AtMostSixLeadingLabelsOfTheHighestMeanProbability) {
  stam::Timeline t;
  for (int64_t i = 0; i < 8; ++i) {  // window i: label i on top, by more for larger i
    stam::TimelineWindow w;
    w.start_s = double(i);
    w.end_s = double(i) + 4;
    w.logits.assign(10, 0.0f);
    w.logits[size_t(i)] = 1.0f + 0.5f * float(i);
    w.top_k = {{i, "label " + std::to_string(i), 0.5}};
    t.windows.push_back(w);
  }
  EXPECT_EQ(stam::leading_labels(t), (std::vector<int64_t>{7, 6, 5, 4, 3, 2}));
}

// ---- the CLI ----

namespace {

std::string timeline_cmd(const std::string& weights, const std::string& args) {
  return shell_quote(stam::test::stam_binary()) + " timeline " +
         shell_quote(video_path("mpeg4_320x240_25fps.avi")) + " --weights " + weights +
         " --device cpu " + args;
}

}  // namespace

TEST(TimelineRenderCli, BadRenderAndPlotPathsAreRefusedBeforeTheModelLoads) {
  stam::test::TempDir dir;
  // No weights: a run that got as far as loading them would fail with exit 4.
  for (const std::string& args :
       {"--render " + dir.file("out.gif"), std::string("--render /nonexistent/dir/out.mp4"),
        std::string("--render /proc/out.mp4"), "--plot " + dir.file("p.gif"),
        std::string("--plot /nonexistent/dir/p.svg"), std::string("--render ''")}) {
    const auto r = stam::test::run_command(timeline_cmd("/nonexistent/stam.pth", args));
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    const std::string flag = args.substr(0, args.find(' '));
    EXPECT_TRUE(contains(r.err, flag)) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  const auto r = stam::test::run_command(
      timeline_cmd("/nonexistent/stam.pth", "--render " + dir.file("out.gif")));
  EXPECT_TRUE(contains(r.err, dir.file("out.gif"))) << r.err;
}

TEST(TimelineRenderCli, WritesTheTimelineThenThePlotAndTheVideo) {
  stam::test::TempDir dir;
  const auto r = stam::test::run_command(timeline_cmd(
      shell_quote(fixture_path("tiny_stam.pth")),
      "--fps 2 --stride-seconds 1 -k 3 --format json -q --plot " + shell_quote(dir.file("p.svg")) +
          " --render " + shell_quote(dir.file("out.mp4"))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "\"segments\""));
  EXPECT_TRUE(contains(stam::test::read_file(dir.file("p.svg")), "<polyline"));
  cv::VideoCapture cap(dir.file("out.mp4"));
  ASSERT_TRUE(cap.isOpened());
  EXPECT_EQ(cap.get(cv::CAP_PROP_FRAME_COUNT), 164);
  EXPECT_EQ(cap.get(cv::CAP_PROP_FRAME_WIDTH), 320);
}
