#pragma once
// The bounded queue between a stream's reader thread and its model thread. A live source never
// waits for the model: when the queue is full its oldest item makes room and counts as dropped.
// A file read as fast as possible waits instead, so nothing is dropped.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>

namespace stam::stream {

template <typename T>
class DropQueue {
 public:
  explicit DropQueue(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // Adds `item`; when full, drops the oldest (`drop_oldest`) or waits for room. Returns the
  // number of items dropped (0 or 1); after close() nothing is added.
  int64_t push(T item, bool drop_oldest) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!drop_oldest) room_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return 0;
    int64_t dropped = 0;
    if (items_.size() >= capacity_) {
      items_.pop_front();
      dropped = 1;
    }
    items_.push_back(std::move(item));
    ready_.notify_one();
    return dropped;
  }

  // The oldest item; false once the queue is finished and empty.
  bool pop(T& out) {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [&] { return finished_ || closed_ || !items_.empty(); });
    if (items_.empty()) return false;
    out = std::move(items_.front());
    items_.pop_front();
    room_.notify_one();
    return true;
  }

  // The producer is done: pop() returns what is left, then false.
  void finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    ready_.notify_all();
  }
  // The consumer is done: push() adds nothing and no longer waits.
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    items_.clear();
    room_.notify_all();
    ready_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::deque<T> items_;
  bool finished_ = false, closed_ = false;
};

}  // namespace stam::stream
