#include "timeline/timeline.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "decode/decode.hpp"
#include "output.hpp"
#include "stam/error.hpp"
#include "timeline/windows.hpp"
#include "util/clock.hpp"

namespace stam {

namespace {

// A number as the user may have typed it: 0.3, 100000, 1e+300.
std::string number(double v) {
  return format_number("%.10g", v);
}

bool rate_in_range(double fps) {
  return fps >= kMinFps && fps <= kMaxFps;
}

const std::string& rate_range() {
  static const std::string text =
      "between " + number(kMinFps) + " and " + number(kMaxFps) + " samples per second";
  return text;
}

}  // namespace

std::optional<int64_t> requested_window_frames(const WindowRequest& r) {
  if (r.window_seconds && !(*r.window_seconds > 0 && std::isfinite(*r.window_seconds)))
    throw UsageError("--window-seconds must be a positive number, got " +
                     number(*r.window_seconds));
  if (r.fps && !rate_in_range(*r.fps))
    throw UsageError("--fps must be " + rate_range() + ", got " + number(*r.fps));
  if (r.stride_seconds && !(*r.stride_seconds > 0 && *r.stride_seconds <= kMaxStrideSeconds))
    throw UsageError("--stride-seconds must be a positive number of seconds up to " +
                     number(kMaxStrideSeconds) + ", got " + number(*r.stride_seconds));
  if (r.window_frames && (*r.window_frames < 1 || *r.window_frames > kMaxWindowFrames))
    throw UsageError("--window-frames must be between 1 and " + std::to_string(kMaxWindowFrames) +
                     ", got " + std::to_string(*r.window_frames));
  if (!r.window_seconds || !r.fps) return r.window_frames;
  const double frames = *r.window_seconds * *r.fps;
  if (frames >= static_cast<double>(kMaxWindowFrames) + 0.5)
    throw UsageError("--window-seconds " + number(*r.window_seconds) + " at --fps " +
                     number(*r.fps) + " is a window of " + number(std::round(frames)) +
                     " frames; a window (one model run) has at most " +
                     std::to_string(kMaxWindowFrames));
  const int64_t t = std::max<int64_t>(1, std::llround(frames));
  // Two of the three set the third; all three must agree.
  if (r.window_frames && *r.window_frames != t)
    throw UsageError("--window-seconds " + number(*r.window_seconds) + " at --fps " +
                     number(*r.fps) + " is a window of " + std::to_string(t) +
                     " frames, not --window-frames " + std::to_string(*r.window_frames) +
                     "; give two of the three");
  return t;
}

WindowPlan resolve_window(const WindowRequest& r, int64_t model_frames) {
  WindowPlan p;
  p.frames = requested_window_frames(r).value_or(model_frames);
  const auto frames = static_cast<double>(p.frames);
  const double seconds = r.window_seconds.value_or(kDefaultWindowSeconds);
  p.fps = r.fps.value_or(frames / seconds);
  if (!rate_in_range(p.fps))
    throw UsageError("windows of " + std::to_string(p.frames) + " frames over " + number(seconds) +
                     " s are a sample rate of " + number(p.fps) + " fps; it must be " +
                     rate_range() + " (see --window-seconds, --fps)");
  if (r.window_seconds && r.fps && std::abs(frames / p.fps - seconds) > 1e-6 * seconds)
    spdlog::info("--window-seconds {} at --fps {} rounds to windows of {} frame{}, {} s long",
                 number(seconds), number(p.fps), p.frames, p.frames == 1 ? "" : "s",
                 format_number("%.3g", frames / p.fps));
  p.stride =
      std::max<int64_t>(1, std::llround(r.stride_seconds.value_or(kDefaultStrideSeconds) * p.fps));
  return p;
}

std::vector<int64_t> window_starts(int64_t samples, int64_t frames, int64_t stride) {
  std::vector<int64_t> starts;
  for (int64_t s = 0; s + frames <= samples; s += stride) starts.push_back(s);
  if (starts.empty())
    starts.push_back(0);
  else if (starts.back() + frames < samples)
    starts.push_back(samples - frames);
  return starts;
}

std::vector<Segment> merge_segments(const std::vector<TimelineWindow>& windows) {
  std::vector<Segment> segments;
  for (const auto& w : windows) {
    const Prediction& top = w.top_k.front();
    if (segments.empty() || segments.back().index != top.index) {
      if (!segments.empty()) segments.back().end_s = std::min(segments.back().end_s, w.start_s);
      segments.push_back({w.start_s, w.end_s, top.index, top.label, 0.0, 0});
    }
    Segment& s = segments.back();
    s.end_s = w.end_s;
    s.score += top.score;
    ++s.windows;
  }
  for (auto& s : segments) s.score /= static_cast<double>(s.windows);
  return segments;
}

Timeline run_timeline(Classifier& classifier, const std::string& input, const WindowPlan& plan,
                      bool reuse) {
  if (classifier.config().frames != plan.frames)
    throw UsageError("timeline: windows of " + std::to_string(plan.frames) +
                     " frames need a model run at that many (it runs " +
                     std::to_string(classifier.config().frames) + ")");
  c10::InferenceMode guard;
  const auto t0 = Clock::now();
  Timeline t;
  t.input = input;
  t.plan = plan;
  t.device = classifier.device_name();
  t.precision = to_string(classifier.precision());
  WindowEncoderOptions encoding;
  encoding.reuse = reuse;
  WindowEncoder encoder(
      classifier, plan,
      [&](const EncodedWindow& e) {
        TimelineWindow w;
        w.start_s = e.start_s;
        w.end_s = e.end_s;
        w.frame_indices = e.frame_indices;
        w.top_k = classifier.top_k(e.logits);
        w.logits = e.logit_values();
        t.windows.push_back(std::move(w));
      },
      encoding);
  const StreamInfo info = read_frames_at_rate(
      input, plan.fps,
      [&](int64_t k, int64_t pos, const cv::Mat& rgb) { encoder.add(k, pos, rgb); });
  encoder.finish();
  t.frames_encoded = encoder.stats().frames_encoded;
  t.timings.spatial_ms = encoder.stats().spatial_ms;
  t.timings.temporal_ms = encoder.stats().temporal_ms;
  t.video_fps = info.fps;
  t.frame_count = info.frame_count;
  t.samples = info.samples;
  t.warnings = info.warnings;
  if (t.samples < plan.frames) {  // one window, its last sample repeated (positions ascend)
    std::vector<int64_t> positions = t.windows.front().frame_indices;
    const auto distinct = std::unique(positions.begin(), positions.end()) - positions.begin();
    t.warnings.push_back(
        "the video is too short for a window of " + std::to_string(plan.frames) + " samples at " +
        format_number("%.3g", plan.fps) + " fps: only " + std::to_string(distinct) +
        (distinct == 1 ? " distinct frame" : " distinct frames") + ", some used more than once");
  }
  if (plan.fps > info.fps * (1 + 1e-9)) {
    t.warnings.push_back("sampling at " + format_number("%.3g", plan.fps) +
                         " fps, above the video's " + format_number("%.3g", info.fps) +
                         " fps: frames repeat within windows");
  }
  for (const auto& w : t.warnings) spdlog::warn("{}: {}", path_line(input), w);
  const double duration = static_cast<double>(info.frame_count) / info.fps;
  for (auto& w : t.windows) w.end_s = std::min(w.end_s, duration);
  t.segments = merge_segments(t.windows);
  t.timings.total_ms = ms_since(t0);
  t.timings.decode_ms = t.timings.total_ms - t.timings.spatial_ms - t.timings.temporal_ms;
  spdlog::info("{}: {} window{} of {} frames, {} frames encoded for {} window frames", input,
               t.windows.size(), t.windows.size() == 1 ? "" : "s", plan.frames, t.frames_encoded,
               static_cast<int64_t>(t.windows.size()) * plan.frames);
  return t;
}

ModelOptions with_window_frames(ModelOptions options, const WindowRequest& window) {
  if (const auto t = requested_window_frames(window)) {
    if (options.frames > 0 && options.frames != *t)
      throw UsageError("--frames " + std::to_string(options.frames) +
                       " contradicts the window of " + std::to_string(*t) +
                       " frames; give one of them");
    options.frames = *t;
  }
  return options;
}

Timeline timeline_of(ModelOptions options, const std::string& input, const WindowRequest& window,
                     bool reuse) {
  check_input(input);
  Classifier classifier(with_window_frames(std::move(options), window));
  const WindowPlan plan = resolve_window(window, classifier.config().frames);
  return run_timeline(classifier, input, plan, reuse);
}

}  // namespace stam
