#pragma once
// The top-k a stream window reports: softmax probabilities averaged over the last N windows
// (--average N, MMAction2's webcam demo's smoothing), labels below a threshold left out.
#include <torch/types.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "stam/stam.hpp"

namespace stam::stream {

class ScoreSmoother {
 public:
  // `average` >= 1 windows, `threshold` in [0, 1]; `labels` outlives this.
  ScoreSmoother(const std::vector<std::string>& labels, int64_t top_k, int64_t average,
                double threshold);
  // Adds one window's logits and returns the top-k of the mean probabilities of the last
  // `average` windows, those below the threshold left out (possibly none).
  std::vector<Prediction> add(const torch::Tensor& logits);

 private:
  const std::vector<std::string>& labels_;
  const int64_t top_k_;
  const size_t average_;
  const double threshold_;
  std::deque<torch::Tensor> recent_;  // probabilities of the last windows
};

}  // namespace stam::stream
