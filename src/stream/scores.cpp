#include "stream/scores.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

namespace stam::stream {

ScoreSmoother::ScoreSmoother(const std::vector<std::string>& labels, int64_t top_k,
                             int64_t average, double threshold)
    : labels_(labels),
      top_k_(top_k),
      average_(static_cast<size_t>(std::max<int64_t>(1, average))),
      threshold_(threshold) {}

std::vector<Prediction> ScoreSmoother::add(const torch::Tensor& logits) {
  recent_.push_back(logits.softmax(0));
  if (recent_.size() > average_) recent_.pop_front();
  torch::Tensor probs = recent_.front();
  if (recent_.size() > 1) probs = torch::stack(std::vector<torch::Tensor>(recent_.begin(), recent_.end())).mean(0);
  auto [values, indices] = probs.topk(std::min<int64_t>(top_k_, probs.size(0)));
  std::vector<Prediction> out;
  for (int64_t i = 0; i < values.size(0); ++i) {
    const double score = values[i].item<double>();
    if (score < threshold_) break;  // descending
    const int64_t idx = indices[i].item<int64_t>();
    out.push_back({idx, labels_[static_cast<size_t>(idx)], score});
  }
  return out;
}

}  // namespace stam::stream
