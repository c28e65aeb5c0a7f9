#include "serve/worker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "serve/http_error.hpp"

namespace stam::serve {

Worker::Worker(Classifier& model, WorkerOptions options, Metrics& metrics)
    : model_(model), options_(std::move(options)), metrics_(metrics) {
  options_.max_batch = std::max<size_t>(1, options_.max_batch);
  const int decoders = std::max(1, options_.decode_workers);
  for (int i = 0; i < decoders; ++i) decoders_.emplace_back([this] { decode_loop(); });
  model_thread_ = std::thread([this] { model_loop(); });
}

Worker::~Worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  jobs_cv_.notify_all();
  for (auto& t : decoders_) t.join();
  {
    std::lock_guard lock(mutex_);
    decoders_done_ = true;  // what they made ready still runs
  }
  ready_cv_.notify_all();
  model_thread_.join();
}

Result Worker::run(std::function<Clip()> decode) {
  std::future<Result> result;
  {
    std::lock_guard lock(mutex_);
    if (admitted_ >= options_.queue)
      throw HttpError(503, "queue_full",
                      "the server has " + std::to_string(options_.queue) +
                          " requests in progress already (--queue); try again shortly");
    ++admitted_;
    jobs_.push_back({std::move(decode), {}});
    result = jobs_.back().result.get_future();
  }
  jobs_cv_.notify_one();
  struct Release {  // the slot is free again however the request ends
    Worker& w;
    ~Release() {
      std::lock_guard lock(w.mutex_);
      --w.admitted_;
    }
  } release{*this};
  return result.get();
}

size_t Worker::depth() const {
  std::lock_guard lock(mutex_);
  return admitted_;
}

void Worker::decode_loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      jobs_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    try {
      Clip clip = job.decode();
      metrics_.frames_decoded(static_cast<int64_t>(clip.frame_indices.size()));
      {
        std::lock_guard lock(mutex_);
        ready_.push_back({std::move(clip), std::move(job.result)});
      }
      ready_cv_.notify_one();
    } catch (...) {
      job.result.set_exception(std::current_exception());
    }
  }
}

std::vector<Worker::Ready> Worker::take_ready() {
  std::unique_lock lock(mutex_);
  ready_cv_.wait(lock, [&] { return decoders_done_ || !ready_.empty(); });
  std::vector<Ready> batch;
  while (!ready_.empty() && batch.size() < options_.max_batch) {
    batch.push_back(std::move(ready_.front()));
    ready_.pop_front();
  }
  return batch;
}

void Worker::model_loop() {
  for (;;) {
    std::vector<Ready> batch = take_ready();
    if (batch.empty()) return;
    forward(batch);
  }
}

void Worker::forward(std::vector<Ready>& batch) {
  try {
    if (options_.before_forward) options_.before_forward();
    std::vector<Clip> clips;
    for (auto& r : batch) clips.push_back(std::move(r.clip));
    std::vector<Result> results = model_.infer(clips);
    metrics_.forward(batch.size());
    spdlog::debug("serve: one forward over {} clip{}", batch.size(), batch.size() == 1 ? "" : "s");
    for (size_t i = 0; i < batch.size(); ++i) batch[i].result.set_value(std::move(results[i]));
  } catch (...) {
    for (auto& r : batch) r.result.set_exception(std::current_exception());
  }
}

}  // namespace stam::serve
