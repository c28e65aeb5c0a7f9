#pragma once
// stam stream: live action recognition over a rolling window. A reader thread reads the source
// continuously and samples it at a fixed rate (frame n of a stream at F fps is sample k where
// floor(k F / rate) == n, as timeline samples files); each sample is preprocessed there and goes
// through a small bounded queue (queue.hpp) to the model thread, which encodes it at once
// (timeline's WindowEncoder, encode chunk 1) and runs the temporal encoder on each window of T
// samples every stride. A live source never waits for the model: samples the model has no time
// for are dropped, so latency stays bounded however long the stream runs; a file is read as fast
// as the model goes, nothing dropped, and gives timeline's windows.
//
//   source.{hpp,cpp}  what SOURCE names, opening it, its frames
//   queue.hpp         the reader-to-model queue that drops the oldest sample when full
//   scores.{hpp,cpp}  --average and --threshold: the top-k a window reports
//   stream.{hpp,cpp}  the run: reader thread, model loop, reconnects, the emitted windows
//   stream_output.cpp a window as a line of JSON or text
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pipeline/pipeline.hpp"
#include "stream/source.hpp"
#include "timeline/timeline.hpp"

namespace stam::stream {

// Stride between windows when --stride-seconds is not given: a result every second.
constexpr double kStreamStrideSeconds = 1.0;

struct StreamOptions {
  bool realtime = false;   // a file paced by its frame rate, as a live source (live rules)
  bool reconnect = false;  // a live source that ends or fails is opened again, with backoff
  double backoff_initial_s = 0.5, backoff_max_s = 10.0;  // doubling from the first to the last
  double timeout_s = 10.0;                               // OpenCV's open and read timeouts
  size_t queue_capacity = 4;                             // samples between the reader and the model
  int64_t top_k = 5;                                     // labels per window
  int64_t average = 1;   // windows whose scores are averaged (--average)
  double threshold = 0;  // labels scoring below it are left out (--threshold)
  // Polled by the reader between frames (and during a reconnect's wait): true stops reading,
  // and the run ends as if the source had ended (SIGINT/SIGTERM).
  std::function<bool()> stop;
  // Test hook: runs on the model thread before each sample is encoded (a slower model).
  std::function<void()> before_forward;
  // --render: every frame the source gives, with the latest window's labels drawn on it, is
  // written to this video file (render/overlay.hpp's VideoWriter) at the source's rate. "": none.
  std::string render;
};

// One emitted window.
struct StreamWindow {
  double t_start_s = 0, t_end_s = 0;   // stream time: first sample's, last one's + 1/fps
  std::vector<int64_t> frame_indices;  // source positions of its frames
  std::vector<Prediction> top_k;       // after --average, without labels below --threshold
  std::vector<float> logits;           // this window's own
  double latency_ms = 0;       // from its last frame leaving the source to this window's emission
  int64_t dropped_frames = 0;  // samples dropped so far, this window's included
};
using WindowCallback = std::function<void(const StreamWindow&)>;

struct StreamSummary {
  double source_fps = 0;
  int64_t frames = 0;   // frames read from the source
  int64_t samples = 0;  // samples taken (dropped ones included)
  int64_t dropped_frames = 0;
  int64_t windows = 0;
  int64_t reconnects = 0;
  int64_t frames_rendered = 0;  // frames written to options.render
  bool stopped = false;         // ended by options.stop
};

// Streams `source` through `classifier` (whose T must be plan.frames), calling `emit` on the
// model thread for each window as it is run, then once more for the closing window when the
// source ends (as timeline's last window, see WindowEncoder::finish). A source not open yet is
// opened. Throws InputError when the source cannot be opened (without reconnect) or gave no
// frame at all; exceptions from `emit` pass through, the reader stopped first.
StreamSummary run_stream(Classifier& classifier, Source& source, const WindowPlan& plan,
                         const StreamOptions& options, const WindowCallback& emit);

// `stam stream`'s whole run: the window request (stride default kStreamStrideSeconds) and the
// source checked and opened (unless options.reconnect lets a live one come later) before the
// model loads, then run_stream. Throws UsageError, InputError and what load_model throws.
StreamSummary stream_of(ModelOptions model, const std::string& source, WindowRequest window,
                        StreamOptions options, const WindowCallback& emit);

// One window as one JSON object: {"t_start_s", "t_end_s", "top_k": [{"index", "label",
// "score"}], "latency_ms", "dropped_frames"[, "logits"]}; seconds rounded to 1 ms, latency to
// 0.1 ms.
nlohmann::ordered_json window_json(const StreamWindow& w, bool with_logits);
// One window as a text line: start and end, the labels with their scores, the latency and any
// samples dropped so far.
std::string window_text(const StreamWindow& w);

}  // namespace stam::stream
