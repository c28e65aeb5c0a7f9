// SIGINT/SIGTERM for stam batch (and stam stream, with an announcement of its own): the first
// asks the run to stop after the clips in progress, the second exits at once with 130.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

#include "batch/batch.hpp"
#include "stam/error.hpp"

namespace stam::batch {

namespace {

// Plain lock-free atomics are the only state a handler may touch.
std::atomic<int> g_signals{0};
std::atomic<bool> g_announce{true};
std::atomic<const char*> g_announcement{kBatchStopAnnouncement};
std::atomic<size_t> g_announcement_size{0};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free &&
              std::atomic<const char*>::is_always_lock_free &&
              std::atomic<size_t>::is_always_lock_free);
struct sigaction g_old_int, g_old_term;

extern "C" void on_stop_signal(int) {
  if (g_signals.fetch_add(1) >= 1) ::_exit(static_cast<int>(Exit::kInterrupted));
  if (g_announce.load()) {
    ssize_t ignored = ::write(STDERR_FILENO, g_announcement.load(),
                              g_announcement_size.load());  // async-signal-safe
    (void)ignored;
  }
}

}  // namespace

const char kBatchStopAnnouncement[] =
    "\nstopping after the videos in progress (send again to quit at once)\n";

SignalGuard::SignalGuard(const char* announcement) {
  g_announce = spdlog::get_level() < spdlog::level::err;
  g_announcement_size = std::strlen(announcement);
  g_announcement = announcement;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // decoders' reads must not see EINTR; we poll the flag instead
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

SignalGuard::~SignalGuard() {
  // After a stop the process is on its way out: a second signal during the teardown must still
  // quit with 130, not die by the default action (143 for SIGTERM).
  if (stop_requested()) return;
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool stop_requested() {
  return g_signals.load() > 0;
}
void request_stop() {
  g_signals.store(1);
}
void clear_stop() {
  g_signals.store(0);
}

}  // namespace stam::batch
