#pragma once
// The requests' way to the model: a bounded number admitted at once, decoded by a few decode
// threads, and one model thread that runs the clips ready together as one batch (dynamic
// batching: it takes what is ready, up to max_batch, and never waits for more).
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "serve/metrics.hpp"
#include "stam/stam.hpp"

namespace stam::serve {

struct WorkerOptions {
  size_t queue = 16;     // requests admitted (decoding, waiting or in a forward) at most
  size_t max_batch = 4;  // clips per forward at most
  int decode_workers = 2;
  // Test hook: runs on the model thread before each forward.
  std::function<void()> before_forward;
};

class Worker {
 public:
  Worker(Classifier& model, WorkerOptions options, Metrics& metrics);
  // Finishes the clips admitted, then stops the threads.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Decodes with `decode` on a decode thread, runs the clip through the model with whatever else
  // is ready, and returns its result; blocks meanwhile. Throws HttpError 503 when `queue`
  // requests are admitted already, and what `decode` or the model throws.
  Result run(std::function<Clip()> decode);
  // Requests admitted and not yet answered.
  size_t depth() const;

 private:
  struct Job {
    std::function<Clip()> decode;
    std::promise<Result> result;
  };
  struct Ready {
    Clip clip;
    std::promise<Result> result;
  };

  void decode_loop();
  void model_loop();
  // The ready clips, up to max_batch, once there is one (none: stopped).
  std::vector<Ready> take_ready();
  void forward(std::vector<Ready>& batch);

  Classifier& model_;
  WorkerOptions options_;
  Metrics& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable jobs_cv_, ready_cv_;
  std::deque<Job> jobs_;
  std::deque<Ready> ready_;
  size_t admitted_ = 0;
  bool stopping_ = false;
  bool decoders_done_ = false;  // stopping, and nothing more can become ready
  std::vector<std::thread> decoders_;
  std::thread model_thread_;
};

}  // namespace stam::serve
