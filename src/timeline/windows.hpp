#pragma once
// The windowing core that `stam timeline` and `stam stream` share: fed one sample at a time, it
// sends each distinct frame through the spatial encoder once and runs the temporal encoder on
// each window of T samples as soon as the window's frames are encoded. It holds only the samples
// and embeddings a window still to come needs (at most T plus an encode chunk), so its memory does
// not grow with the length of the video or stream.
#include <torch/types.h>
#include <opencv2/core.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "pipeline/pipeline.hpp"
#include "timeline/timeline.hpp"

namespace stam {

// One window the encoder ran.
struct EncodedWindow {
  // Stream time: its first sample's, and its last real one's + 1/fps (frames past that repeat it).
  double start_s = 0, end_s = 0;
  std::vector<int64_t> frame_indices;  // source positions of its T frames
  torch::Tensor logits;                // (classes) float32 on the CPU

  std::vector<float> logit_values() const {
    return {logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel()};
  }
};
using WindowSink = std::function<void(const EncodedWindow&)>;

struct WindowEncoderOptions {
  // false: every window's frames are encoded again (timeline --no-reuse).
  bool reuse = true;
  // Distinct frames encoded together; 1 runs each window as its last sample arrives (streams).
  size_t encode_chunk = 8;
};

// What the encoder spent, for timeline's timings.
struct EncoderStats {
  int64_t frames_encoded = 0;  // spatial encoder runs
  double spatial_ms = 0, temporal_ms = 0;
};

class WindowEncoder {
 public:
  // Windows start every plan.stride samples, in the order add() received them; `classifier`'s T
  // must be plan.frames. `sink` gets each window as it is run.
  WindowEncoder(Classifier& classifier, const WindowPlan& plan, WindowSink sink,
                WindowEncoderOptions options = {});

  // The next sample: sample number `k` (ascending, gaps allowed where samples were dropped) at
  // source position `pos`. A sample at the same position as the one before it reuses its frame,
  // and `pixels` (preprocessed, (1, S, S, 3)) is then not called.
  void add(int64_t k, int64_t pos, const std::function<torch::Tensor()>& pixels);
  void add(int64_t k, int64_t pos, const cv::Mat& rgb);
  // Runs what is left: a window ending at the last sample when the stride left it out, or the
  // single window of a source shorter than T samples (its last sample repeated). Nothing when no
  // sample came.
  void finish();

  int64_t samples() const { return count_; }
  const EncoderStats& stats() const { return stats_; }

 private:
  struct Sample {
    int64_t k, pos, item;  // item: the distinct frame it shows
  };
  const Sample& sample(int64_t i) const;
  int64_t encoded() const { return first_item_ + static_cast<int64_t>(items_.size()); }
  void encode_pending();
  void run_ready_windows();
  void run_window(int64_t start);
  void drop_unneeded();

  Classifier& c_;
  const WindowPlan plan_;
  const WindowSink sink_;
  const WindowEncoderOptions options_;
  EncoderStats stats_;
  std::deque<Sample> samples_;          // samples first_sample_, first_sample_ + 1, ...
  std::vector<torch::Tensor> pending_;  // preprocessed distinct frames not yet encoded
  std::deque<torch::Tensor> items_;     // distinct frames first_item_, first_item_ + 1, ...
  int64_t first_sample_ = 0;
  int64_t count_ = 0;  // samples received
  int64_t first_item_ = 0;
  int64_t distinct_ = 0;
  int64_t next_start_ = 0;
  int64_t last_start_ = -1;
};

}  // namespace stam
