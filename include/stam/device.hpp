#pragma once
// Device and numeric precision selection, kept out of the model's code paths.
#include <torch/types.h>

#include <string>

namespace stam {

struct StamConfig;

// kAuto is resolved by choose_precision() before a model is built.
enum class Precision { kFp32, kBf16, kFp16, kAuto };

Precision parse_precision(const std::string& name);  // throws UsageError
std::string to_string(Precision p);
c10::ScalarType scalar_type(Precision p);

// "auto" -> CUDA when available else CPU; "cpu"; "cuda" or "cuda:N". Throws DeviceError with a
// clear message when CUDA is asked for and not there, UsageError for unknown names.
torch::Device resolve_device(const std::string& name);

// Throws DeviceError when `p` cannot run on `device` with this LibTorch build.
void check_precision(const torch::Device& device, Precision p);

struct PrecisionChoice {
  Precision precision = Precision::kFp32;
  // Why, said after the precision, e.g. "auto: bf16 measured 2.60x the fp32 rate (...)".
  std::string reason;
  double fp32_gflops = 0, bf16_gflops = 0;  // the rates measured, when measured
};

// The precision a run uses. An explicit one is kept as it is: callers check_precision() it
// first, before they load anything, so the check (on CUDA a bf16 product) is not repeated here.
// kAuto is fp16 on CUDA. On CPU it is fp32 when the CPU has no bf16 instructions (bf16 is then
// emulated, always slower), and otherwise the faster of fp32 and bf16 (see faster_precision) at
// the model's first MLP product for one frame, on one thread, measured now (~0.1 s): native bf16
// is 2-5x faster on some CPUs and slower on others.
PrecisionChoice choose_precision(const torch::Device& device, Precision requested,
                                 const StamConfig& config);
// The CPU measurement alone, whatever the CPU's instructions: the two precisions take turns, so
// that a disturbance (another process on the cores) slows both alike, and each keeps its best.
PrecisionChoice measure_cpu_precision(int64_t m, int64_t k, int64_t n);
// bf16 when its measured rate is at least kBf16Margin times fp32's, else fp32. bf16 rounds the
// products, so it has to be clearly faster; and with rates that close (1.1x, say) the choice
// would flip between runs of one command on a busy machine, and their results with it.
constexpr double kBf16Margin = 1.2;
Precision faster_precision(double fp32_gflops, double bf16_gflops);

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

// Sets the calling thread's OpenMP thread count for the leases held now; does nothing before
// configure_cpu_runtime().
void fit_threads_to_decoding();

// Waits for queued device work so that wall-clock timings are honest on CUDA; no-op on CPU.
void synchronize(const torch::Device& device);

}  // namespace stam
