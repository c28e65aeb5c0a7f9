#include "serve/metrics.hpp"

#include <sstream>

namespace stam::serve {

namespace {

template <size_t N>
void observe(const std::array<double, N>& bounds, std::array<int64_t, N>& buckets, double v) {
  for (size_t i = 0; i < N; ++i)
    if (v <= bounds[i]) ++buckets[i];
}

template <size_t N>
void histogram(std::ostringstream& out, const std::string& name, const std::string& help,
               const std::array<double, N>& bounds, const std::array<int64_t, N>& buckets,
               int64_t count, double sum) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
  for (size_t i = 0; i < N; ++i)
    out << name << "_bucket{le=\"" << bounds[i] << "\"} " << buckets[i] << '\n';
  out << name << "_bucket{le=\"+Inf\"} " << count << '\n'
      << name << "_sum " << sum << '\n'
      << name << "_count " << count << '\n';
}

void counter(std::ostringstream& out, const std::string& name, const std::string& help,
             int64_t value) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n"
      << name << ' ' << value << '\n';
}

}  // namespace

void Metrics::request(const std::string& endpoint, int status, std::optional<double> seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
  if (!seconds) return;
  observe(kLatencyBounds, latency_buckets_, *seconds);
  ++latency_count_;
  latency_sum_ += *seconds;
}

void Metrics::frames_decoded(int64_t n) {
  std::lock_guard lock(mutex_);
  frames_ += n;
}

void Metrics::forward(size_t batch) {
  std::lock_guard lock(mutex_);
  observe(kBatchBounds, batch_buckets_, static_cast<double>(batch));
  ++forwards_;
  batch_clips_ += static_cast<int64_t>(batch);
}

std::string Metrics::render(size_t queue_depth) const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP stam_requests_total Requests answered, by route and HTTP status.\n"
      << "# TYPE stam_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out << "stam_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} "
        << n << '\n';
  histogram(out, "stam_request_duration_seconds", "Time from a request's arrival to its answer.",
            kLatencyBounds, latency_buckets_, latency_count_, latency_sum_);
  out << "# HELP stam_queue_depth Requests admitted and not yet answered.\n"
      << "# TYPE stam_queue_depth gauge\nstam_queue_depth " << queue_depth << '\n';
  counter(out, "stam_frames_decoded_total", "Frames decoded for the model.", frames_);
  counter(out, "stam_forwards_total", "Model forwards run.", forwards_);
  histogram(out, "stam_batch_size", "Clips per model forward.", kBatchBounds, batch_buckets_,
            forwards_, static_cast<double>(batch_clips_));
  return out.str();
}

}  // namespace stam::serve
