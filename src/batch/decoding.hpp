#pragma once
// The decode side of a batch run (internal to src/batch/): worker threads that prepare inputs
// ahead of the model, and the bounded queue that hands their clips over.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "batch/batch.hpp"

namespace stam::batch {

// A decoded clip, or why decoding failed.
struct Item {
  std::string input;
  std::optional<Clip> clip;
  std::string error;
};

// Bounded so that decoding can run ahead of the model without holding the whole dataset in
// memory; producers block when it is full: at `capacity` clips, or at kDecodeQueueBytes of
// pixels, which -b 4096 would otherwise reach 40 times over.
class ClipQueue {
 public:
  ClipQueue(size_t capacity, int producers) : capacity_(capacity), producers_(producers) {}

  // False when the queue was closed (the run is stopping): drop the item.
  bool push(Item item);
  void producer_done();
  // A producer that cannot go on (no memory, say): its inputs would be missing from a run that
  // ended as if complete, so the consumer's next pop() throws `error` instead.
  void fail(std::exception_ptr error);
  // Waits at most `wait` (so the caller can poll the stop flag: a signal handler cannot notify
  // a condition variable) and then takes up to `max` items that are ready.
  std::vector<Item> pop(size_t max, std::chrono::milliseconds wait);
  bool finished();
  void close();

 private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Item> items_;
  size_t capacity_;
  int64_t bytes_ = 0;  // of the clips' pixels
  int producers_;
  bool closed_ = false;
  std::exception_ptr error_;  // a producer's, see fail()
};

// W threads pulling the next input index and pushing decoded clips. Joined on destruction, also
// when the run unwinds with an exception or a thread cannot be started.
class DecodePool {
 public:
  DecodePool(const Preparer& prepare, const std::vector<std::string>& work, int workers,
             ClipQueue& queue, Progress& progress);
  ~DecodePool() { stop(); }

 private:
  void run();
  void stop();

  Preparer prepare_;
  const std::vector<std::string>& work_;
  ClipQueue& queue_;
  Progress& progress_;
  std::atomic<size_t> next_{0};
  std::vector<std::thread> threads_;
};

// The pending inputs as they were when decoding started, the queue and its workers.
struct Decoding {
  Decoding(const Preparer& prepare, std::vector<std::string> inputs, int workers, size_t capacity,
           Progress& progress)
      : work(std::move(inputs)),
        queue(capacity, workers),
        pool(prepare, work, workers, queue, progress) {}
  std::vector<std::string> work;
  ClipQueue queue;
  DecodePool pool;
};

}  // namespace stam::batch
