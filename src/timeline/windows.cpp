#include "timeline/windows.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <utility>

#include "pipeline/video_clip.hpp"
#include "util/clock.hpp"

namespace stam {

WindowEncoder::WindowEncoder(Classifier& classifier, const WindowPlan& plan, WindowSink sink,
                             WindowEncoderOptions options)
    : c_(classifier), plan_(plan), sink_(std::move(sink)), options_(options) {}

void WindowEncoder::add(int64_t k, int64_t pos, const cv::Mat& rgb) {
  add(k, pos, [&] { return preprocess_frames({rgb}, c_.config().image_size, c_.device()); });
}

void WindowEncoder::add(int64_t k, int64_t pos, const std::function<torch::Tensor()>& pixels) {
  if (samples_.empty() || samples_.back().pos != pos) {
    pending_.push_back(pixels());
    ++distinct_;
  }
  samples_.push_back({k, pos, distinct_ - 1});
  ++count_;
  if (pending_.size() >= std::max<size_t>(1, options_.encode_chunk)) encode_pending();
  run_ready_windows();
  drop_unneeded();
}

void WindowEncoder::finish() {
  if (count_ == 0) return;
  encode_pending();
  run_ready_windows();
  if (count_ < plan_.frames)
    run_window(0);
  else if (last_start_ + plan_.frames < count_)
    run_window(count_ - plan_.frames);
}

const WindowEncoder::Sample& WindowEncoder::sample(int64_t i) const {
  return samples_[static_cast<size_t>(i - first_sample_)];
}

// Each distinct frame's item: its embedding, or (without reuse) its pixels.
void WindowEncoder::encode_pending() {
  if (pending_.empty()) return;
  torch::Tensor pixels = c_.join_frames(pending_);
  pending_.clear();
  if (!options_.reuse) {
    for (int64_t i = 0; i < pixels.size(0); ++i) items_.push_back(pixels.narrow(0, i, 1));
    return;
  }
  const auto t0 = Clock::now();
  torch::Tensor emb = c_.encode_frames(pixels);
  c_.synchronize();
  stats_.spatial_ms += ms_since(t0);
  stats_.frames_encoded += emb.size(0);
  for (int64_t i = 0; i < emb.size(0); ++i) items_.push_back(emb[i]);
}

void WindowEncoder::run_ready_windows() {
  while (next_start_ + plan_.frames <= count_ &&
         sample(next_start_ + plan_.frames - 1).item < encoded()) {
    run_window(next_start_);
    next_start_ += plan_.stride;
  }
}

// Window from sample `start`; samples past the last repeat it (a source shorter than T).
void WindowEncoder::run_window(int64_t start) {
  last_start_ = start;
  EncodedWindow w;
  std::vector<torch::Tensor> items;
  for (int64_t j = start; j < start + plan_.frames; ++j) {
    const Sample& s = sample(std::min(j, count_ - 1));
    items.push_back(items_[static_cast<size_t>(s.item - first_item_)]);
    w.frame_indices.push_back(s.pos);
  }
  w.start_s = static_cast<double>(sample(start).k) / plan_.fps;
  w.end_s =
      static_cast<double>(sample(std::min(start + plan_.frames, count_) - 1).k + 1) / plan_.fps;
  // Embeddings (D each) are stacked; pixels ((1, S, S, 3) each) go to the spatial encoder.
  torch::Tensor frames = options_.reuse ? torch::stack(items) : c_.join_frames(items);
  if (!options_.reuse) {
    const auto t0 = Clock::now();
    frames = c_.encode_frames(frames);
    c_.synchronize();
    stats_.spatial_ms += ms_since(t0);
    stats_.frames_encoded += plan_.frames;
  }
  const auto t0 = Clock::now();
  w.logits = c_.logits(c_.encode_clips(frames.unsqueeze(0)))[0].contiguous();
  stats_.temporal_ms += ms_since(t0);
  sink_(w);
}

// Future windows start at next_start_ or later, or end at the last sample (the closing window),
// so samples before both, and the frames only they show, are done with.
void WindowEncoder::drop_unneeded() {
  const int64_t keep_from = std::min(next_start_, std::max<int64_t>(0, count_ - plan_.frames));
  while (first_sample_ < keep_from) {
    samples_.pop_front();
    ++first_sample_;
  }
  const int64_t first_needed = sample(keep_from).item;
  while (first_item_ < first_needed && !items_.empty()) {
    items_.pop_front();
    ++first_item_;
  }
}

}  // namespace stam
