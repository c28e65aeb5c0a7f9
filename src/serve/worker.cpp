#include "serve/worker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "device.hpp"
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

Worker::Slot::Slot(Worker& w) : w_(w) {
  std::lock_guard lock(w_.mutex_);
  if (w_.admitted_ >= w_.options_.queue)
    throw HttpError(503, "queue_full",
                    "the server has " + std::to_string(w_.options_.queue) +
                        " requests in progress already (--queue); try again shortly");
  ++w_.admitted_;
}

Worker::Slot::~Slot() {
  std::lock_guard lock(w_.mutex_);
  --w_.admitted_;
}

Result Worker::run(std::function<Clip()> decode) {
  Slot slot(*this);
  std::future<Result> result;
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back({std::move(decode), {}});
    result = jobs_.back().result.get_future();
  }
  jobs_cv_.notify_one();
  return result.get();
}

void Worker::run_exclusive(std::function<void()> task) {
  Slot slot(*this);
  std::future<void> done;
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back({std::move(task), {}});
    done = tasks_.back().done.get_future();
  }
  ready_cv_.notify_one();
  done.get();
}

size_t Worker::depth() const {
  std::lock_guard lock(mutex_);
  return admitted_;
}

// As batch's decode workers: at the lowest priority, and each decode holding a DecodeLease, so
// that it takes a core the model gives up between blocks instead of stalling its threads.
void Worker::decode_loop() {
  lower_thread_priority();
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
      Clip clip = [&] {
        DecodeLease lease;
        return job.decode();
      }();
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

bool Worker::take_work(std::vector<Ready>& batch, std::optional<Task>& task) {
  std::unique_lock lock(mutex_);
  ready_cv_.wait(lock, [&] { return decoders_done_ || !ready_.empty() || !tasks_.empty(); });
  while (!ready_.empty() && batch.size() < options_.max_batch) {
    batch.push_back(std::move(ready_.front()));
    ready_.pop_front();
  }
  if (!tasks_.empty()) {
    task.emplace(std::move(tasks_.front()));
    tasks_.pop_front();
  }
  return !batch.empty() || task;
}

// One batch and one task a turn, so that neither kind waits behind a stream of the other.
void Worker::model_loop() {
  for (;;) {
    std::vector<Ready> batch;
    std::optional<Task> task;
    if (!take_work(batch, task)) return;
    if (!batch.empty()) forward(batch);
    if (!task) continue;
    try {
      task->run();
      task->done.set_value();
    } catch (...) {
      task->done.set_exception(std::current_exception());
    }
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
