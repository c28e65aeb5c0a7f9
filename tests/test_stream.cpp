// stam stream: on a file its windows are timeline's; live sources (a TCP stream ffmpeg serves
// in real time, standard input) end cleanly; a model slower than the source drops samples and
// keeps latency bounded; --average, --threshold, signals, --reconnect and bad sources.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>
#include <opencv2/videoio.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <thread>

#include "stam/error.hpp"
#include "stream/scores.hpp"
#include "stream/stream.hpp"
#include "test_util.hpp"
#include "timeline/timeline.hpp"

using stam::test::as_doubles;
using stam::test::fixture_path;
using stam::test::run_command;
using stam::test::shell_quote;
using stam::test::stam_cmd;
using stam::test::tiny_model_options;
using stam::test::video_path;
using Json = nlohmann::json;

namespace {

std::string stream_model_flags() {
  return "-w " + shell_quote(fixture_path("tiny_stam.pth")) + " --labels " +
         shell_quote(stam::test::source_path("models/kinetics400_labels.txt")) + " --device cpu";
}

std::vector<Json> jsonl(const std::string& text) {
  std::vector<Json> out;
  for (const auto& line : stam::test::lines_of(text)) out.push_back(Json::parse(line));
  return out;
}

// A TCP port nothing listens on just now (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Short clips made once for the suite: 4 s of arm wrestling as MP4 and as MPEG-TS (MPEG-2), and
// 12 s of it as MPEG-TS for the runs a signal stops.
class StreamClips : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new stam::test::TempDir();
    const std::string src = shell_quote(video_path("arm_wrestling_340x256_28fps.mp4"));
    const std::string ff = "ffmpeg -nostdin -loglevel error -y ";
    for (const auto& cmd :
         {ff + "-i " + src + " -t 4 -c:v mpeg4 -q:v 4 " + shell_quote(file("clip.mp4")),
          ff + "-i " + src + " -t 4 -c:v mpeg2video -q:v 4 -f mpegts " +
              shell_quote(file("clip.ts")),
          ff + "-stream_loop 1 -i " + src + " -t 12 -c:v mpeg2video -q:v 4 -f mpegts " +
              shell_quote(file("long.ts"))}) {
      const auto r = run_command(cmd);
      ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.err;
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string file(const std::string& name) { return dir_->file(name); }

  // A command that serves `clip` once over TCP at its own rate, in the background, waits until it
  // listens on `port`, then runs `client`; its status is the client's.
  static std::string served(const std::string& clip, int port, const std::string& client) {
    return "ffmpeg -nostdin -loglevel error -re -i " + shell_quote(file(clip)) +
           " -c copy -f mpegts 'tcp://127.0.0.1:" + std::to_string(port) + "?listen' & ff=$!; " +
           "for i in $(seq 200); do grep -qi ':" + hex_port(port) +
           " 00000000:0000 0A' /proc/net/tcp && break; sleep 0.05; done; " + client +
           "; rc=$?; kill $ff 2>/dev/null; wait $ff 2>/dev/null; exit $rc";
  }
  static std::string hex_port(int port) {
    char s[8];
    std::snprintf(s, sizeof s, "%04X", port);
    return s;
  }
  static stam::test::TempDir* dir_;
};
stam::test::TempDir* StreamClips::dir_ = nullptr;

// Runs `command` in the background, sends `signal` once its stdout file `out` has a line (or
// stderr file `err` contains `wait_for`), and returns the shell line doing it.
std::string signal_when(const std::string& command, const std::string& watched,
                        const std::string& pattern, const std::string& signal) {
  return command + " & pid=$!; for i in $(seq 600); do grep -q " + shell_quote(pattern) + " " +
         shell_quote(watched) + " 2>/dev/null && break; kill -0 $pid 2>/dev/null || break; " +
         "sleep 0.05; done; kill -" + signal + " $pid; wait $pid";
}

}  // namespace

TEST(StreamSource, WhatTheSourceNames) {
  using stam::stream::parse_source;
  using stam::stream::SourceKind;
  EXPECT_EQ(parse_source("-", false).kind, SourceKind::kStdin);
  EXPECT_EQ(parse_source("rtsp://cam/1", false).kind, SourceKind::kUrl);
  EXPECT_EQ(parse_source("/dev/video0", false).kind, SourceKind::kCamera);
  EXPECT_EQ(parse_source("0", false).kind, SourceKind::kCamera);
  const auto file = parse_source("clip.mp4", false);
  EXPECT_EQ(file.kind, SourceKind::kFile);
  EXPECT_FALSE(file.live);
  EXPECT_TRUE(parse_source("clip.mp4", true).live);
  EXPECT_TRUE(parse_source("clip.mp4", true).paced);
  EXPECT_TRUE(parse_source("-", false).live);
  EXPECT_FALSE(parse_source("-", false).paced);
  EXPECT_THROW(parse_source("", false), stam::UsageError);
}

TEST(StreamScores, AverageOfTheLastWindowsAndThreshold) {
  const std::vector<std::string> labels = {"a", "b", "c"};
  stam::stream::ScoreSmoother two(labels, 3, 2, 0.0);
  const torch::Tensor l1 = torch::tensor({2.0f, 0.0f, 0.0f});
  const torch::Tensor l2 = torch::tensor({0.0f, 3.0f, 0.0f});
  const torch::Tensor l3 = torch::tensor({0.0f, 0.0f, 1.0f});
  EXPECT_NEAR(two.add(l1)[0].score, l1.softmax(0)[0].item<double>(), 1e-6);
  const auto p2 = two.add(l2);
  const torch::Tensor mean2 = (l1.softmax(0) + l2.softmax(0)) / 2;
  EXPECT_EQ(p2[0].label, "b");
  EXPECT_NEAR(p2[0].score, mean2[1].item<double>(), 1e-6);
  const auto p3 = two.add(l3);  // l1 has left the average
  const torch::Tensor mean3 = (l2.softmax(0) + l3.softmax(0)) / 2;
  for (const auto& p : p3) EXPECT_NEAR(p.score, mean3[p.index].item<double>(), 1e-6) << p.label;

  stam::stream::ScoreSmoother high(labels, 3, 1, 0.5);
  const auto only = high.add(l2);  // b 0.91, a and c 0.045 each
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].label, "b");
  EXPECT_TRUE(high.add(torch::zeros({3})).empty());  // 1/3 each, all below 0.5
}

TEST_F(StreamClips, FileWindowsEqualTimelines) {
  stam::Classifier c(tiny_model_options());
  for (const std::string& clip : {file("clip.mp4"), video_path("short_32frames_30fps.mp4")}) {
    stam::WindowRequest r;
    r.fps = 6.0;
    r.stride_seconds = 0.7;  // 4 samples: 4 s x 6 fps = 24 samples, windows 0..16 and a closing one
    const stam::WindowPlan plan = stam::resolve_window(r, c.config().frames);
    const stam::Timeline t = stam::run_timeline(c, clip, plan);
    std::vector<stam::stream::StreamWindow> got;
    stam::stream::Source source(stam::stream::parse_source(clip, false), 10);
    const auto summary = stam::stream::run_stream(
        c, source, plan, {}, [&](const stam::stream::StreamWindow& w) { got.push_back(w); });
    EXPECT_EQ(summary.dropped_frames, 0);
    EXPECT_EQ(summary.samples, t.samples);
    ASSERT_EQ(got.size(), t.windows.size()) << clip;
    ASSERT_GE(got.size(), 1u);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].frame_indices, t.windows[i].frame_indices) << clip << " window " << i;
      EXPECT_DOUBLE_EQ(got[i].t_start_s, t.windows[i].start_s);
      EXPECT_DOUBLE_EQ(got[i].t_end_s, t.windows[i].end_s);  // the last ones end with the file
      EXPECT_LE(
          stam::test::relative_error(as_doubles(got[i].logits), as_doubles(t.windows[i].logits)),
          1e-5)
          << clip << " window " << i;
      EXPECT_EQ(got[i].top_k.front().index, t.windows[i].top_k.front().index);
    }
  }
}

// --render writes every frame the source gave, at its size and rate, with the label box drawn
// once the first window has run; the windows are the same as without it.
TEST_F(StreamClips, RenderWritesEverySourceFrameWithTheLabels) {
  stam::Classifier c(tiny_model_options());
  stam::WindowRequest r;
  r.fps = 6.0;
  const stam::WindowPlan plan = stam::resolve_window(r, c.config().frames);
  const std::string clip = file("clip.mp4");
  stam::stream::StreamOptions o;
  o.render = dir_->file("rendered.mp4");
  std::vector<stam::stream::StreamWindow> got;
  stam::stream::Source source(stam::stream::parse_source(clip, false), 10);
  const auto summary = stam::stream::run_stream(
      c, source, plan, o, [&](const stam::stream::StreamWindow& w) { got.push_back(w); });
  ASSERT_GE(got.size(), 1u);
  EXPECT_EQ(summary.frames_rendered, summary.frames);
  cv::VideoCapture in(clip), out(o.render);
  ASSERT_TRUE(out.isOpened());
  EXPECT_EQ(out.get(cv::CAP_PROP_FRAME_WIDTH), in.get(cv::CAP_PROP_FRAME_WIDTH));
  EXPECT_EQ(out.get(cv::CAP_PROP_FRAME_HEIGHT), in.get(cv::CAP_PROP_FRAME_HEIGHT));
  EXPECT_NEAR(out.get(cv::CAP_PROP_FPS), in.get(cv::CAP_PROP_FPS), 0.01);
  cv::Mat a, b;
  int64_t frames = 0;
  double last_box_diff = 0;
  while (out.read(b)) {
    ASSERT_TRUE(in.read(a)) << "frame " << frames;
    const cv::Rect corner(0, 0, 40, 20);  // inside the label box, which darkens the frame
    last_box_diff = cv::mean(cv::abs(a(corner) - b(corner)) + cv::abs(b(corner) - a(corner)))[1];
    ++frames;
  }
  EXPECT_EQ(frames, summary.frames);
  EXPECT_GT(last_box_diff, 10.0);  // the last frame carries the last window's labels
}

// A model far slower than a source paced in real time: samples are dropped, counted, warned
// about once, and a window's latency stays near the model's own time instead of growing with
// the stream (without drops the last window would wait for seconds of backlog).
TEST_F(StreamClips, ASlowModelDropsSamplesAndLatencyStaysBounded) {
  stam::Classifier c(tiny_model_options());
  stam::WindowRequest r;
  r.fps = 20.0;  // a sample every 50 ms; the model takes over 100 ms each
  r.stride_seconds = 0.5;
  const stam::WindowPlan plan = stam::resolve_window(r, c.config().frames);
  stam::stream::StreamOptions o;
  o.realtime = true;
  const auto delay = std::chrono::milliseconds(100);
  o.before_forward = [&] { std::this_thread::sleep_for(delay); };
  std::ostringstream log;
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  std::vector<stam::stream::StreamWindow> got;
  stam::stream::Source source(stam::stream::parse_source(file("clip.mp4"), true), 10);
  const auto summary = stam::stream::run_stream(
      c, source, plan, o, [&](const stam::stream::StreamWindow& w) { got.push_back(w); });
  spdlog::set_default_logger(previous);
  // 4 s x 20 fps = 80 samples; the model can take at most 40 in 4 s.
  EXPECT_EQ(summary.samples, 80);
  EXPECT_GT(summary.dropped_frames, 20);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().dropped_frames, summary.dropped_frames);
  for (size_t i = 1; i < got.size(); ++i)
    EXPECT_GE(got[i].dropped_frames, got[i - 1].dropped_frames);
  size_t warnings = 0;
  for (const auto& line : stam::test::lines_of(log.str()))
    warnings += stam::test::contains(line, "samples are dropped");
  EXPECT_EQ(warnings, 1u) << log.str();
  // The queue holds 4 samples of 100+ ms: a latency far above that is a backlog. Without drops
  // the last window would come about 4 s (80 x 100 ms - 4 s) after its frame.
  for (const auto& w : got) EXPECT_LT(w.latency_ms, 25 * delay.count()) << w.t_start_s;
}

TEST_F(StreamClips, CliFileGivesTimelinesWindowsAsJsonLines) {
  const std::string args = " " + stream_model_flags() + " --fps 4 --stride-seconds 1 ";
  const auto t = run_command(
      stam_cmd("timeline " + shell_quote(file("clip.mp4")) + args + "--format json --logits"));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const auto s = run_command(
      stam_cmd("stream " + shell_quote(file("clip.mp4")) + args + "--format jsonl --logits -k 3"));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const Json timeline = Json::parse(t.out);
  const auto lines = jsonl(s.out);
  ASSERT_EQ(lines.size(), timeline["windows"].size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const Json& w = lines[i];
    for (const char* key : {"t_start_s", "t_end_s", "top_k", "latency_ms", "dropped_frames"})
      EXPECT_TRUE(w.contains(key)) << key;
    EXPECT_EQ(w["t_start_s"], timeline["windows"][i]["start_s"]);
    EXPECT_EQ(w["top_k"].size(), 3u);
    EXPECT_EQ(w["dropped_frames"], 0);
    EXPECT_GE(w["latency_ms"].get<double>(), 0);
    for (const auto& p : w["top_k"])
      EXPECT_TRUE(p.contains("index") && p.contains("label") && p.contains("score"));
    EXPECT_LE(
        stam::test::relative_error(w["logits"].get<std::vector<double>>(),
                                   timeline["windows"][i]["logits"].get<std::vector<double>>()),
        1e-5);
  }
}

TEST_F(StreamClips, CliAverageAndThreshold) {
  const std::string base =
      stam_cmd("stream " + shell_quote(file("clip.mp4")) + " " + stream_model_flags() +
               " --fps 4 --format jsonl --logits -k 400");
  const auto r = run_command(base + " --average 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = jsonl(r.out);
  ASSERT_GE(lines.size(), 3u);
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto probs = [&](size_t j) {
      return torch::tensor(lines[j]["logits"].get<std::vector<float>>()).softmax(0);
    };
    const torch::Tensor mean = (probs(i - 1) + probs(i)) / 2;
    const Json& top = lines[i]["top_k"][0];
    EXPECT_EQ(top["index"].get<int64_t>(), mean.argmax().item<int64_t>()) << i;
    EXPECT_NEAR(top["score"].get<double>(), mean.max().item<double>(), 1e-5) << i;
  }
  const auto high =
      run_command(base + " --threshold 0.5");  // 400 classes: the tiny model is unsure
  ASSERT_EQ(high.exit_code, 0) << high.err;
  for (const auto& w : jsonl(high.out)) {
    for (const auto& p : w["top_k"]) EXPECT_GE(p["score"].get<double>(), 0.5);
  }
  const auto text = run_command(stam_cmd("stream " + shell_quote(file("clip.mp4")) + " " +
                                         stream_model_flags() + " --fps 4 --threshold 1"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(stam::test::contains(text.out, "no label above the threshold")) << text.out;
}

TEST_F(StreamClips, LiveTcpSourceThatStopsEndsCleanly) {
  const int port = free_port();
  const auto r =
      run_command(served("clip.ts", port,
                         stam_cmd("stream tcp://127.0.0.1:" + std::to_string(port) + " " +
                                  stream_model_flags() + " --fps 4 --format jsonl")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = jsonl(r.out);
  ASSERT_GE(lines.size(), 2u) << r.out;  // 4 s at 4 fps: 16 samples, windows of 8 every 4
  EXPECT_GT(lines.back()["t_end_s"].get<double>(), 2.0);
  for (const auto& w : lines) EXPECT_FALSE(w["top_k"].empty());
}

TEST_F(StreamClips, StandardInput) {
  const auto r =
      run_command("ffmpeg -nostdin -loglevel error -re -i " + shell_quote(file("clip.ts")) +
                  " -c copy -f mpegts - | " +
                  stam_cmd("stream - " + stream_model_flags() + " --fps 4 --format jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = jsonl(r.out);
  ASSERT_GE(lines.size(), 2u) << r.out;
  EXPECT_GT(lines.back()["t_end_s"].get<double>(), 2.0);
}

TEST_F(StreamClips, SigintAndSigtermFlushAndExitZero) {
  for (const std::string signal : {"INT", "TERM"}) {
    const int port = free_port();
    const std::string out = file("signal_" + signal + ".jsonl");
    const std::string client =
        stam_cmd("stream tcp://127.0.0.1:" + std::to_string(port) + " " + stream_model_flags() +
                 " --fps 4 --stride-seconds 0.5 --format jsonl") +
        " > " + shell_quote(out);
    const auto r =
        run_command(served("long.ts", port, signal_when(client, out, "t_end_s", signal)));
    EXPECT_EQ(r.exit_code, 0) << signal << ": " << r.err;
    EXPECT_TRUE(stam::test::contains(r.err, "stopping")) << r.err;
    const auto lines = jsonl(stam::test::read_file(out));  // every line whole
    ASSERT_GE(lines.size(), 1u);
    // Stopped long before the 12 s source ended.
    EXPECT_LT(lines.back()["t_end_s"].get<double>(), 11.0) << signal;
  }
}

TEST(StreamCli, ReconnectRetriesUntilSigterm) {
  stam::test::TempDir dir;
  const std::string err = dir.file("err.txt");
  const int port = free_port();  // nothing listens there
  const std::string cmd = stam_cmd("stream tcp://127.0.0.1:" + std::to_string(port) + " " +
                                   stream_model_flags() + " --reconnect --timeout-seconds 1") +
                          " 2> " + shell_quote(err);
  const auto r = run_command(signal_when(cmd, err, "retrying in 1 s", "TERM"));
  EXPECT_EQ(r.exit_code, 0) << stam::test::read_file(err);
  const std::string log = stam::test::read_file(err);
  EXPECT_TRUE(stam::test::contains(log, "retrying in 0.5 s")) << log;
  EXPECT_TRUE(stam::test::contains(log, "retrying in 1 s")) << log;  // doubled
}

TEST(StreamCli, BadSourcesAreInputErrorsNamingThem) {
  const int port = free_port();
  for (const std::string& source : {"tcp://127.0.0.1:" + std::to_string(port),
                                    std::string("/no/such/video.mp4"), std::string("bogus://x")}) {
    const auto r = run_command(stam_cmd("stream " + shell_quote(source) + " " +
                                        stream_model_flags() + " --timeout-seconds 2"));
    EXPECT_EQ(r.exit_code, 3) << source << ": " << r.err;
    EXPECT_TRUE(stam::test::contains(r.err, source)) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}
