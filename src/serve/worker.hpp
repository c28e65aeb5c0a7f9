#pragma once
// The requests' way to the model: a bounded number admitted at once, decoded by a few decode
// threads, and one model thread that runs the clips ready together as one batch (dynamic
// batching: it takes what is ready, up to max_batch, and never waits for more). Work that needs the
// model to itself (a timeline, an embedding) runs on the model thread between forwards.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
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
  // Runs `task` on the model thread, between forwards, and returns once it is done; admitted or
  // refused as run() is, and rethrows what `task` throws. For whatever calls the model's stages
  // itself (timeline, embed): the model is not shared while it runs.
  void run_exclusive(std::function<void()> task);
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
  struct Task {
    std::function<void()> run;
    std::promise<void> done;
  };
  // A slot of the queue, held while a request is admitted; throws HttpError 503 when all are.
  class Slot {
   public:
    explicit Slot(Worker& w);
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    Worker& w_;
  };

  void decode_loop();
  void model_loop();
  // Once there is work: the ready clips, up to max_batch, and the oldest task, either possibly
  // none; false when stopped with nothing left.
  bool take_work(std::vector<Ready>& batch, std::optional<Task>& task);
  void forward(std::vector<Ready>& batch);

  Classifier& model_;
  WorkerOptions options_;
  Metrics& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable jobs_cv_, ready_cv_;
  std::deque<Job> jobs_;
  std::deque<Ready> ready_;
  std::deque<Task> tasks_;
  size_t admitted_ = 0;
  bool stopping_ = false;
  bool decoders_done_ = false;  // stopping, and nothing more can become ready
  std::vector<std::thread> decoders_;
  std::thread model_thread_;
};

}  // namespace stam::serve
