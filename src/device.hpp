#pragma once
// The device a run uses, and the CPU runtime under the model: threads, allocator, priorities,
// and decoding beside the model. Precision is chosen in model/precision.hpp.
#include <torch/types.h>

#include <string>

namespace stam {

// "auto" -> CUDA when available else CPU; "cpu"; "cuda" or "cuda:N". Throws DeviceError with a
// clear message when CUDA is asked for and not there, UsageError for unknown names.
torch::Device resolve_device(const std::string& name);

// CPU cores this process may run on (the affinity mask that Slurm and container runtimes set,
// which hardware_concurrency() ignores); at least 1.
int usable_cpu_cores();

// Prepares the CPU side of a run: `threads` intra-op threads (0 = usable_cpu_cores(); LibTorch's
// OpenMP pool can start at 1 thread, seen with Debian's build), and an allocator that keeps
// freed activation buffers (up to 32 MiB each) for reuse instead of returning them to the OS,
// which would make every layer fault its output pages in afresh, but returns more than 16 MiB
// of free memory at the top of an arena.
void configure_cpu_runtime(int threads);

// Gives the calling thread the lowest CPU priority (nice 19: on Linux a thread's own), so that
// decoding beside the model only takes CPU time the model's threads leave idle (a block that
// started before a DecodeLease runs undisturbed); the threads it starts afterwards (FFmpeg's
// decoder threads) inherit it. For threads that do nothing else: an unprivileged thread cannot
// raise its priority again.
void lower_thread_priority();

// Decoding beside the model on the same cores. A decode thread that preempts one of the model's
// OpenMP threads stalls the others at the next barrier: decoding then costs the model its whole
// duration, not one core's share of it. So a thread holds a DecodeLease while it decodes, and
// the model calls fit_threads_to_decoding() between blocks, which gives each lease a core of its
// own: the model runs on model_threads(threads asked, usable cores, leases) threads until the
// next call. The logits do not depend on the thread count (a test holds this).
class DecodeLease {
 public:
  DecodeLease();
  ~DecodeLease();
  DecodeLease(const DecodeLease&) = delete;
  DecodeLease& operator=(const DecodeLease&) = delete;
};

// The threads asked for while nothing decodes; while something does, no more than the cores the
// leases leave, and at least one.
int model_threads(int asked, int cores, int leases);

// The calling thread's OpenMP thread count (which oneDNN reads too) set to `n` for the object's
// lifetime; at::set_num_threads would also drop LibTorch's oneDNN primitive cache and rebuild a
// thread pool (~4 ms).
class ScopedThreads {
 public:
  explicit ScopedThreads(int n);
  ~ScopedThreads();
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int before_;
};

// Sets the calling thread's OpenMP thread count for the leases held now; does nothing before
// configure_cpu_runtime().
void fit_threads_to_decoding();

// Waits for queued device work so that wall-clock timings are honest on CUDA; no-op on CPU.
void synchronize(const torch::Device& device);

}  // namespace stam
