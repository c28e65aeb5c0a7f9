#pragma once
// One-ahead prefetching: a background thread computes the next item while the caller works on
// the current one (classify decodes input i + 1 while the model runs input i).
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

namespace stam {

// Calls produce(0), produce(1), ..., produce(count - 1) in order on one background thread, never
// more than one item ahead of the caller: produce(0) starts at once, produce(i + 1) once next()
// has handed out item i. next() returns the items in order; what produce(i) threw is rethrown by
// the i-th next() and the following items still come. The destructor stops producing: it waits
// for a produce() call under way (that cannot be interrupted) and starts no other.
template <typename T>
class Prefetcher {
 public:
  Prefetcher(size_t count, std::function<T(size_t)> produce)
      : count_(count), produce_(std::move(produce)), thread_([this] { run(); }) {}

  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next item in order, waiting for it; throws what produce() threw for it, or
  // std::out_of_range once all `count` items have been handed out.
  T next() {
    std::unique_lock<std::mutex> lock(mu_);
    if (taken_ == count_) throw std::out_of_range("Prefetcher::next: no items left");
    changed_.wait(lock, [this] { return ready_.has_value(); });
    Outcome outcome = std::move(*ready_);
    ready_.reset();
    ++taken_;
    lock.unlock();
    changed_.notify_all();
    if (outcome.error) std::rethrow_exception(outcome.error);
    return std::move(*outcome.value);
  }

 private:
  struct Outcome {
    std::optional<T> value;
    std::exception_ptr error;
  };

  void run() {
    for (size_t i = 0; i < count_; ++i) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        changed_.wait(lock, [&] { return stopping_ || taken_ >= i; });
        if (stopping_) return;
      }
      Outcome outcome;
      try {
        outcome.value.emplace(produce_(i));
      } catch (...) {
        outcome.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_.emplace(std::move(outcome));
      }
      changed_.notify_all();
    }
  }

  const size_t count_;
  const std::function<T(size_t)> produce_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::optional<Outcome> ready_;  // item taken_, once produced
  size_t taken_ = 0;              // items handed out by next()
  bool stopping_ = false;
  std::thread thread_;  // last: starts after everything it uses
};

}  // namespace stam
