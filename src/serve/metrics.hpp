#pragma once
// The server's counters, in Prometheus' text format at GET /metrics.
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace stam::serve {

class Metrics {
 public:
  // One answered request: its route ("/v1/classify", ...), status and seconds taken (none for a
  // request refused before it was routed: a malformed request line or header).
  void request(const std::string& endpoint, int status, std::optional<double> seconds);
  void frames_decoded(int64_t n);
  // One model forward over `batch` clips.
  void forward(size_t batch);
  // Everything, with `queue_depth` (requests admitted and not yet answered) as a gauge.
  std::string render(size_t queue_depth) const;

 private:
  static constexpr std::array<double, 10> kLatencyBounds{0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,  1,     2.5,  5,   10};
  static constexpr std::array<double, 6> kBatchBounds{1, 2, 4, 8, 16, 32};

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::array<int64_t, kLatencyBounds.size()> latency_buckets_{};
  int64_t latency_count_ = 0;
  double latency_sum_ = 0;
  std::array<int64_t, kBatchBounds.size()> batch_buckets_{};
  int64_t forwards_ = 0, batch_clips_ = 0, frames_ = 0;
};

}  // namespace stam::serve
