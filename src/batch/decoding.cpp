// The decode side of a batch run: the queue between the decode workers and the model, and the
// workers themselves.
#include "batch/decoding.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "device.hpp"
#include "stam/error.hpp"

namespace stam::batch {

namespace {

int64_t bytes_of(const Item& item) {
  return item.clip && item.clip->pixels.defined() ? int64_t(item.clip->pixels.nbytes()) : 0;
}

Item prepare_one(const Preparer& prepare, const std::string& input) {
  Item item{input, std::nullopt, ""};
  try {
    item.clip = prepare(input);
  } catch (const std::exception& e) {
    item.error = e.what();
  } catch (...) {
    item.error = "unknown error while decoding";
  }
  if (item.error.empty() && !item.clip) item.error = "decoding produced nothing";
  return item;
}

// prepare_one, with a core of its own while the model runs beside it (not while it waits for
// room in the queue).
Item prepare_leased(const Preparer& prepare, const std::string& input) {
  DecodeLease lease;
  return prepare_one(prepare, input);
}

}  // namespace

bool ClipQueue::push(Item item) {
  std::unique_lock<std::mutex> lock(mu_);
  not_full_.wait(
      lock, [&] { return closed_ || (items_.size() < capacity_ && bytes_ < kDecodeQueueBytes); });
  if (closed_) return false;
  bytes_ += bytes_of(item);
  items_.push_back(std::move(item));
  not_empty_.notify_one();
  return true;
}

void ClipQueue::producer_done() {
  std::lock_guard<std::mutex> lock(mu_);
  --producers_;
  not_empty_.notify_all();
}

void ClipQueue::fail(std::exception_ptr error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_) error_ = error;
  not_empty_.notify_all();
}

std::vector<Item> ClipQueue::pop(size_t max, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  not_empty_.wait_for(lock, wait, [&] { return error_ || !items_.empty() || producers_ == 0; });
  if (error_) std::rethrow_exception(error_);
  std::vector<Item> out;
  while (!items_.empty() && out.size() < max) {
    bytes_ -= bytes_of(items_.front());
    out.push_back(std::move(items_.front()));
    items_.pop_front();
  }
  not_full_.notify_all();
  return out;
}

bool ClipQueue::finished() {
  std::lock_guard<std::mutex> lock(mu_);
  return producers_ == 0 && items_.empty();
}

void ClipQueue::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  not_full_.notify_all();
}

DecodePool::DecodePool(const Preparer& prepare, const std::vector<std::string>& work, int workers,
                       ClipQueue& queue, Progress& progress)
    : prepare_(prepare), work_(work), queue_(queue), progress_(progress) {
  try {
    while (threads_.size() < static_cast<size_t>(workers)) threads_.emplace_back([this] { run(); });
  } catch (const std::exception& e) {
    stop();  // a started thread destroyed unjoined is std::terminate
    throw Error(Exit::kInternal,
                fmt::format("cannot start decode worker {} of {} ({}): try fewer --decode-workers",
                            threads_.size() + 1, workers, e.what()));
  }
}

// Nothing may leave a thread (std::terminate). prepare_one makes a failed decode the input's
// error record; a failure around it (no memory for the queue or the progress line) goes to
// the queue, whose consumer stops the run with it.
void DecodePool::run() {
  try {
    lower_thread_priority();
    for (size_t k; !stop_requested() && (k = next_++) < work_.size();) {
      progress_.decoding(work_[k]);
      if (!queue_.push(prepare_leased(prepare_, work_[k]))) break;
    }
  } catch (...) {
    queue_.fail(std::current_exception());
  }
  queue_.producer_done();
}

void DecodePool::stop() {
  queue_.close();
  for (auto& t : threads_) t.join();
}

int default_decode_workers(bool gpu) {
  const int cores = usable_cpu_cores();
  return gpu ? std::clamp(cores - 1, 1, 8) : std::clamp(cores / 4, 1, 8);
}

}  // namespace stam::batch
