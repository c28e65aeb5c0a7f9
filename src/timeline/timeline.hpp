#pragma once
// stam timeline: label a long video window by window. Frames are sampled at a fixed rate over
// the whole video and a window of T samples slides along them by a stride. STAM encodes each
// frame on its own, so each sampled frame goes through the spatial encoder once and its
// embedding serves every window that contains it; only the temporal encoder runs per window.
// Decoding streams, and only the embeddings a window still to come needs are kept.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/pipeline.hpp"

namespace stam {

// The window as the user gave it; unset fields take defaults (see resolve_window).
struct WindowRequest {
  std::optional<double> window_seconds;
  std::optional<int64_t> window_frames;
  std::optional<double> stride_seconds;
  std::optional<double> fps;
};

// Default window length and stride when the request does not give them.
constexpr double kDefaultWindowSeconds = 10.0;
constexpr double kDefaultStrideSeconds = 2.0;
// The bounds of a request. A window is one model run, so it is at most as long as classify's
// --frames allows; a sample rate outside these bounds (a day between samples, or thousands of
// copies of each frame) is a typo, and unbounded it overflowed the window's size or the memory.
constexpr int64_t kMaxWindowFrames = 4096;
constexpr double kMinFps = 0.001, kMaxFps = 1000;
constexpr double kMaxStrideSeconds = 1e6;

struct WindowPlan {
  int64_t frames = 0;  // T: samples per window, the frames the model runs
  double fps = 0;      // samples per second
  int64_t stride = 0;  // samples between window starts
};

// The window length in frames the request fixes without knowing the model: --window-frames, or
// --window-seconds times --fps. nullopt: the model's own T. Checks every value the model does not
// decide: throws UsageError, saying the allowed range, for a value that is not positive, a window
// above kMaxWindowFrames, a --fps outside [kMinFps, kMaxFps] or a --stride-seconds above
// kMaxStrideSeconds.
std::optional<int64_t> requested_window_frames(const WindowRequest& r);

// T = requested_window_frames, else `model_frames`; fps = --fps, else T per window length
// (--window-seconds, default 10 s: 1.6 fps for STAM-16); stride = --stride-seconds (default 2 s)
// in samples, rounded, at least 1. Throws UsageError as requested_window_frames does, and when the
// rate T per window length falls outside [kMinFps, kMaxFps]. Logs a notice when rounding to whole
// frames changes the window length asked for (--window-seconds 1 --fps 0.3: 1 frame, 3.33 s).
WindowPlan resolve_window(const WindowRequest& r, int64_t model_frames);

// `options` with the window's frame count as the model's T (--frames), when the request fixes
// one (requested_window_frames). Throws UsageError as that does, and when --frames contradicts it.
ModelOptions with_window_frames(ModelOptions options, const WindowRequest& window);

// First samples of the windows over `samples` samples: 0, stride, 2 stride, ... while a whole
// window fits, then one window ending at the last sample when the stride left it out. A video
// shorter than one window gets the single window {0} (its last sample repeated to fill it).
std::vector<int64_t> window_starts(int64_t samples, int64_t frames, int64_t stride);

struct TimelineWindow {
  double start_s = 0, end_s = 0;       // from the first sample's time to the last one's + 1/fps
  std::vector<int64_t> frame_indices;  // positions of the window's T frames in the video
  std::vector<Prediction> top_k;
  std::vector<float> logits;
};

// A run of consecutive windows with the same top-1 label: from the first one's start to the
// next run's first start (the last run: to its last window's end), so segments do not overlap.
struct Segment {
  double start_s = 0, end_s = 0;
  int64_t index = 0;
  std::string label;
  double score = 0;  // the label's mean score over the run's windows
  int64_t windows = 0;
};

std::vector<Segment> merge_segments(const std::vector<TimelineWindow>& windows);

struct Timeline {
  std::string input;
  WindowPlan plan;
  double video_fps = 0;
  int64_t frame_count = 0;
  int64_t samples = 0;         // frames sampled (positions, repeats included)
  int64_t frames_encoded = 0;  // spatial encoder runs: distinct sampled frames with reuse
  std::vector<TimelineWindow> windows;
  std::vector<Segment> segments;
  Timings timings;  // decode (with preprocessing), spatial, temporal (with the head), total
  std::string device;
  std::string precision;  // the model's, `auto` resolved
  // The read's (StreamInfo::warnings), then the run's: a video shorter than one window, a rate
  // above the video's.
  std::vector<std::string> warnings;
};

// Labels `input` window by window with `classifier` (whose T must be plan.frames), through
// WindowEncoder (windows.hpp). With `reuse` false every window's frames are encoded again, as classifying each window on its own
// would: the same logits, for measuring what reuse saves. Throws InputError.
Timeline run_timeline(Classifier& classifier, const std::string& input, const WindowPlan& plan,
                      bool reuse = true);

// `stam timeline`'s whole run: checks what can be refused without the model (the input, the
// window, a frame count that contradicts it) before the model loads, then loads it with the
// window's T and labels `input`. Throws UsageError, InputError and what load_model throws.
Timeline timeline_of(ModelOptions options, const std::string& input, const WindowRequest& window,
                     bool reuse = true);

// The window whose labels stand for time `time_s`: the latest one starting at or before it (the
// first before any starts). `windows` is not empty and in order of start.
size_t window_at(const std::vector<TimelineWindow>& windows, double time_s);

// Writes `input` again to `out` (a video file, render/overlay.hpp's VideoWriter), at its own rate
// and size (a frames folder at kFramesFolderFps), each frame at time t with the top-k of the latest
// window starting at or before t drawn on it, and t as a caption; returns the frames written.
// `t` must be the timeline of `input`. Throws InputError as the read does, UsageError when `out`
// cannot be written.
int64_t render_timeline(const Timeline& t, const std::string& input, const std::string& out);

// The labels a timeline plot draws (plot.cpp): those top-1 in some window, at most
// kMaxPlotLabels (the ones of highest mean probability), highest mean first.
constexpr size_t kMaxPlotLabels = 6;
std::vector<int64_t> leading_labels(const Timeline& t);
// Probability (softmax of the logits) of each leading label against time, one line each at the
// windows' middles, under a band of the top-1 segments, with a legend; SVG or PNG by the
// extension (render/canvas.hpp's write_plot). Throws UsageError for another extension or a file
// that cannot be written.
void write_timeline_plot(const Timeline& t, const std::string& path);

// Renderings (timeline_output.cpp). JSON: {"input", "video_fps", "frame_count", "fps",
// "window_frames", "stride_frames", "samples", "frames_encoded", "window_frames_total", "windows":
// [{"start_s", "end_s", "frame_indices", "top_k"[, "logits"]}], "segments": [{"start_s", "end_s",
// "index", "label", "score", "windows"}], "timings_ms", "device", "precision"[, "warnings"]};
// seconds rounded to 1 ms; "warnings" only when there are some, as in classify's records.
nlohmann::ordered_json timeline_json(const Timeline& t, bool with_logits);
// A header row and one row per window: start_s,end_s,label_1,score_1,...,label_k,score_k, k the
// windows' top-k (-k, at most the class count, as in JSON).
std::string timeline_csv(const Timeline& t);
// Windows, then segments, then what reuse saved, the timings and any warnings.
std::string timeline_text(const Timeline& t);

}  // namespace stam
