#include "stream/stream.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "decode/decode.hpp"
#include "pipeline/video_clip.hpp"
#include "render/overlay.hpp"
#include "stam/error.hpp"
#include "stream/queue.hpp"
#include "stream/scores.hpp"
#include "timeline/windows.hpp"
#include "util/clock.hpp"
#include "util/text.hpp"

namespace stam::stream {

namespace {

// --render: the source's frames, each with the labels of the latest window run so far, to a
// video file opened at the first frame's size. The labels come from the model thread, the frames
// from the reader thread.
class FrameRenderer {
 public:
  explicit FrameRenderer(std::string path) : path_(std::move(path)) {}

  void labels(const std::vector<Prediction>& top) {
    std::lock_guard<std::mutex> lock(mutex_);
    top_ = top;
  }

  void frame(const cv::Mat& rgb, int64_t pos, double fps) {
    if (!writer_) writer_ = std::make_unique<VideoWriter>(path_, fps, rgb.size());
    cv::Mat drawn = rgb.clone();
    std::vector<Prediction> top;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      top = top_;
    }
    draw_overlay(drawn, top, "t=" + format_number("%.1f", static_cast<double>(pos) / fps) + " s");
    writer_->write(drawn);
  }

  // Finishes the file; the frames written.
  int64_t close() {
    if (!writer_) return 0;
    writer_->close();
    return writer_->frames();
  }

 private:
  std::string path_;
  std::mutex mutex_;
  std::vector<Prediction> top_;
  std::unique_ptr<VideoWriter> writer_;
};

struct Sample {
  int64_t k = 0, pos = 0;
  torch::Tensor pixels;       // preprocessed, (1, S, S, 3)
  Clock::time_point arrival;  // when the source gave its frame
};

// The reader thread's work: frames from the source, sampled at the plan's rate, into the queue;
// the source opened (again) as the options say. Counters are read by the model thread.
class Reader {
 public:
  Reader(Classifier& c, Source& source, double rate, const StreamOptions& o,
         DropQueue<Sample>& queue, FrameRenderer* renderer)
      : c_(c),
        source_(source),
        rate_(rate),
        o_(o),
        queue_(queue),
        renderer_(renderer),
        backoff_(o.backoff_initial_s) {}

  void run() {
    c10::InferenceMode guard;
    try {
      while (open_source()) {
        const int64_t before = frames_;
        read_until_end();
        if (stopping() || !o_.reconnect || !source_.spec().live) break;
        source_.close();
        if (frames_ > before) backoff_ = o_.backoff_initial_s;
        spdlog::warn("{}: the source ended; reconnecting in {} s", path_line(source_.spec().name),
                     backoff_);
        ++reconnects_;
        if (wait(backoff_)) break;
        backoff_ = std::min(backoff_ * 2, o_.backoff_max_s);
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    stopped_ = asked_to_stop();
    queue_.finish();
  }

  void abort() { abort_ = true; }
  std::exception_ptr error() const { return error_; }
  int64_t dropped() const { return dropped_; }
  StreamSummary summary() const {
    StreamSummary s;
    s.source_fps = fps_;
    s.frames = frames_;
    s.samples = k_;
    s.dropped_frames = dropped_;
    s.reconnects = reconnects_;
    s.stopped = stopped_;
    return s;
  }

 private:
  bool asked_to_stop() const { return o_.stop && o_.stop(); }
  bool stopping() const { return abort_ || asked_to_stop(); }

  // Sleeps `seconds` unless asked to stop meanwhile; true when asked.
  bool wait(double seconds) {
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (!stopping() && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return stopping();
  }

  // Opens the source unless it is open; with reconnect, a live source that fails to open is
  // tried again with backoff until it opens or a stop. False when stopped first.
  bool open_source() {
    while (!source_.is_open()) {
      if (stopping()) return false;
      try {
        source_.open();
      } catch (const InputError& e) {
        if (!o_.reconnect || !source_.spec().live) throw;
        spdlog::warn("{}; retrying in {} s", e.what(), backoff_);
        if (wait(backoff_)) return false;
        backoff_ = std::min(backoff_ * 2, o_.backoff_max_s);
      }
    }
    if (fps_ == 0) fps_ = source_.fps();  // positions go on across reconnects at the first rate
    return true;
  }

  // Reads until the source ends or a stop; a paced file waits for each frame's time.
  void read_until_end() {
    const auto opened = Clock::now();
    const int64_t first = frames_;
    while (!stopping() && source_.grab()) {
      if (source_.spec().paced)
        std::this_thread::sleep_until(
            opened + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                         static_cast<double>(frames_ - first) / fps_)));
      cv::Mat rgb;  // decoded once, when a sample or the renderer wants it
      const auto frame = [&]() -> const cv::Mat& {
        if (rgb.empty()) rgb = source_.retrieve();
        return rgb;
      };
      take(frames_, Clock::now(), frame);
      if (renderer_) renderer_->frame(frame(), frames_, fps_);
      ++frames_;
    }
  }

  // Every sample that falls on frame `pos` goes to the queue, the frame decoded and
  // preprocessed once for them.
  void take(int64_t pos, Clock::time_point arrival, const std::function<const cv::Mat&()>& frame) {
    if (sample_position(k_, fps_, rate_) != pos) return;
    const torch::Tensor pixels = preprocess_frames({frame()}, c_.config().image_size, c_.device());
    for (; sample_position(k_, fps_, rate_) == pos; ++k_) {
      if (queue_.push({k_, pos, pixels, arrival}, source_.spec().live) == 0) continue;
      if (dropped_++ == 0)
        spdlog::warn(
            "{}: the model is slower than the source; samples are dropped to keep up "
            "(dropped_frames counts them)",
            path_line(source_.spec().name));
    }
  }

  Classifier& c_;
  Source& source_;
  const double rate_;
  const StreamOptions& o_;
  DropQueue<Sample>& queue_;
  FrameRenderer* renderer_;
  double backoff_;
  double fps_ = 0;
  std::atomic<int64_t> frames_{0}, k_{0}, dropped_{0}, reconnects_{0};
  std::atomic<bool> abort_{false}, stopped_{false};
  std::exception_ptr error_;
};

// Runs the reader on a thread of its own for the life of this object; leaving early (an
// exception on the model thread) stops it and waits for it.
class ReaderThread {
 public:
  ReaderThread(Reader& reader, DropQueue<Sample>& queue)
      : reader_(reader), queue_(queue), thread_([&reader] { reader.run(); }) {}
  ~ReaderThread() {
    if (!thread_.joinable()) return;
    reader_.abort();
    queue_.close();
    thread_.join();
  }
  void join() { thread_.join(); }

 private:
  Reader& reader_;
  DropQueue<Sample>& queue_;
  std::thread thread_;
};

}  // namespace

StreamSummary run_stream(Classifier& classifier, Source& source, const WindowPlan& plan,
                         const StreamOptions& options, const WindowCallback& emit) {
  if (classifier.config().frames != plan.frames)
    throw UsageError("stream: windows of " + std::to_string(plan.frames) +
                     " frames need a model run at that many (it runs " +
                     std::to_string(classifier.config().frames) + ")");
  c10::InferenceMode guard;
  DropQueue<Sample> queue(options.queue_capacity);
  std::unique_ptr<FrameRenderer> renderer;
  if (!options.render.empty()) renderer = std::make_unique<FrameRenderer>(options.render);
  Reader reader(classifier, source, plan.fps, options, queue, renderer.get());
  ScoreSmoother scores(classifier.labels(), options.top_k, options.average, options.threshold);
  Clock::time_point last_arrival;  // with encode chunk 1 a window runs as its last sample comes
  int64_t windows = 0;
  // Once the source has ended, the windows end no later than its last frame, as timeline's do. A
  // file's window is held until the next one comes or the file ends, so that the last one is
  // known: a window followed by a sample ends within the file anyway.
  bool source_ended = false;
  const bool hold = !source.spec().live;
  std::optional<std::pair<StreamWindow, Clock::time_point>> held;
  auto write = [&](StreamWindow w, Clock::time_point arrival) {
    if (source_ended) {
      const StreamSummary so_far = reader.summary();
      w.t_end_s = std::min(w.t_end_s, static_cast<double>(so_far.frames) / so_far.source_fps);
    }
    w.latency_ms = ms_since(arrival);
    emit(w);
  };
  WindowEncoderOptions encoding;
  encoding.encode_chunk = 1;
  WindowEncoder encoder(
      classifier, plan,
      [&](const EncodedWindow& e) {
        StreamWindow w;
        w.t_start_s = e.start_s;
        w.t_end_s = e.end_s;
        w.frame_indices = e.frame_indices;
        w.top_k = scores.add(e.logits);
        if (renderer) renderer->labels(w.top_k);
        w.logits = e.logit_values();
        w.dropped_frames = reader.dropped();
        ++windows;
        if (!hold) return write(std::move(w), last_arrival);
        if (held) write(std::move(held->first), held->second);
        held.emplace(std::move(w), last_arrival);
      },
      encoding);
  {
    ReaderThread thread(reader, queue);
    Sample s;
    while (queue.pop(s)) {
      if (options.before_forward) options.before_forward();
      last_arrival = s.arrival;
      encoder.add(s.k, s.pos, [&] { return s.pixels; });
    }
    thread.join();
  }
  source_ended = true;
  encoder.finish();  // what the source gave before it ended, failed or was stopped
  if (held) write(std::move(held->first), held->second);
  if (reader.error()) std::rethrow_exception(reader.error());
  StreamSummary summary = reader.summary();
  summary.windows = windows;
  if (renderer) summary.frames_rendered = renderer->close();
  if (summary.frames == 0 && !summary.stopped)
    throw InputError(path_line(source.spec().name) + ": no decodable video frames");
  return summary;
}

StreamSummary stream_of(ModelOptions model, const std::string& source, WindowRequest window,
                        StreamOptions options, const WindowCallback& emit) {
  Source src(parse_source(source, options.realtime), options.timeout_s);
  if (!window.stride_seconds) window.stride_seconds = kStreamStrideSeconds;
  model = with_window_frames(std::move(model), window);
  // A bad source fails before the model loads, unless reconnect waits for a live one.
  if (!(options.reconnect && src.spec().live)) src.open();
  Classifier classifier(model);
  const WindowPlan plan = resolve_window(window, classifier.config().frames);
  options.top_k = model.top_k;
  spdlog::info("{}: windows of {} samples at {} fps, one every {} sample{}", path_line(source),
               plan.frames, plan.fps, plan.stride, plan.stride == 1 ? "" : "s");
  return run_stream(classifier, src, plan, options, emit);
}

}  // namespace stam::stream
