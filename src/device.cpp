#include "stam/device.hpp"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <thread>

#include "stam/cpu.hpp"
#include "stam/error.hpp"
#include "stam/linear.hpp"
#include "stam/model.hpp"

namespace stam {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "fp16") return Precision::kFp16;
  if (name == "auto") return Precision::kAuto;
  throw UsageError("unknown precision '" + name + "' (expected auto, fp32, bf16 or fp16)");
}

std::string to_string(Precision p) {
  switch (p) {
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
    case Precision::kAuto:
      return "auto";
    case Precision::kFp32:
      break;
  }
  return "fp32";
}

c10::ScalarType scalar_type(Precision p) {
  switch (p) {
    case Precision::kBf16:
      return torch::kBFloat16;
    case Precision::kFp16:
      return torch::kHalf;
    case Precision::kAuto:
      throw std::logic_error("scalar_type(Precision::kAuto): choose_precision() first");
    case Precision::kFp32:
      break;
  }
  return torch::kFloat;
}

namespace {

torch::Device cuda_device(const std::string& name) {
  int64_t index = 0;
  if (name.size() > 4) {  // "cuda:N"; resolve_device() checked the colon
    const std::string digits = name.substr(5);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
        digits.size() > 4)
      throw UsageError("bad device '" + name + "' (expected cuda or cuda:N)");
    index = std::stoll(digits);
  }
  if (!torch::cuda::is_available()) {
    throw DeviceError(std::string("--device ") + name + ": no CUDA device is available (" +
                      // hasCUDA() asks for a device; hasCUDART() whether LibTorch has CUDA.
                      (at::globalContext().hasCUDART()
                           ? "no GPU found or driver missing"
                           : "this LibTorch build has no CUDA support") +
                      "); use --device cpu or auto");
  }
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= count)
    throw DeviceError("--device " + name + ": only " + std::to_string(count) +
                      " CUDA device(s) present");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0)
                                       : torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0 && (name.size() == 4 || name[4] == ':')) return cuda_device(name);
  throw UsageError("unknown device '" + name + "' (expected auto, cpu, cuda or cuda:N)");
}

void check_precision(const torch::Device& device, Precision p) {
  // LibTorch's CPU kernels have no half-precision matrix multiply; bf16 has one.
  if (p == Precision::kFp16 && device.is_cpu())
    throw DeviceError("--precision fp16 needs a CUDA device; on CPU use bf16 or fp32");
  // GPUs before Ampere may have no bf16 matrix multiply: ask this one for a tiny product.
  if (p == Precision::kBf16 && device.is_cuda()) {
    try {
      const auto x =
          torch::ones({8, 8}, torch::TensorOptions().device(device).dtype(torch::kBFloat16));
      (void)x.mm(x).sum().item<float>();
    } catch (const c10::Error& e) {
      throw DeviceError("--precision bf16: " + device.str() + " cannot multiply bf16 matrices (" +
                        e.what_without_backtrace() + "); use --precision fp16 or fp32");
    }
  }
}

namespace {

// The omp_set_num_threads of the OpenMP runtime LibTorch loaded (Debian's libgomp, or the renamed
// copy that pytorch.org's builds carry): linking a runtime of our own could put a second one in
// the process, whose count LibTorch and oneDNN would never read. Null for a LibTorch without
// OpenMP.
void (*openmp_set_threads())(int) {
  static const auto set =
      reinterpret_cast<void (*)(int)>(::dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return set;
}

// The calling thread's own count, which oneDNN reads too. at::set_num_threads would also drop
// LibTorch's oneDNN primitive cache and rebuild a thread pool (~4 ms), twice a clip.
void set_calling_thread_count(int n) {
  if (auto* set = openmp_set_threads())
    set(n);
  else
    at::set_num_threads(n);
}

// set_calling_thread_count() for its lifetime.
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : before_(at::get_num_threads()) { set_calling_thread_count(n); }
  ~ScopedThreads() { set_calling_thread_count(before_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int before_;
};

}  // namespace

Precision faster_precision(double fp32_gflops, double bf16_gflops) {
  return bf16_gflops >= kBf16Margin * fp32_gflops ? Precision::kBf16 : Precision::kFp32;
}

PrecisionChoice measure_cpu_precision(int64_t m, int64_t k, int64_t n) {
  // On one thread: with two, a thread of ours waiting for its core (another process's work)
  // holds up the whole product, and the rates came out in any order. Each round runs a product
  // for at least 5 ms, so a small model's product is not timed on scheduling noise.
  const ScopedThreads one(1);
  const torch::Device cpu(torch::kCPU);
  const GemmProbe fp32(m, k, n, cpu, torch::kFloat, false),
      bf16(m, k, n, cpu, torch::kBFloat16, false);
  const auto calls = [](const GemmProbe& p) {
    p.run();  // warm-up
    return static_cast<int>(std::clamp(std::ceil(5e-3 * p.run() / p.gflop()), 1.0, 1000.0));
  };
  const int fp32_calls = calls(fp32), bf16_calls = calls(bf16);
  PrecisionChoice c;
  for (int round = 0; round < 5; ++round) {
    c.fp32_gflops = std::max(c.fp32_gflops, fp32.run(fp32_calls));
    c.bf16_gflops = std::max(c.bf16_gflops, bf16.run(bf16_calls));
  }
  c.precision = faster_precision(c.fp32_gflops, c.bf16_gflops);
  const double ratio = c.bf16_gflops / c.fp32_gflops;
  c.reason = fmt::format(
      "auto: bf16 measured {:.2f}x the fp32 rate ({:.0f} against {:.0f} GFLOP/s on one "
      "thread){}",
      ratio, c.bf16_gflops, c.fp32_gflops,
      c.precision == Precision::kFp32 && ratio > 1
          ? fmt::format(", under the {:.1f}x bf16 must gain", kBf16Margin)
          : "");
  return c;
}

PrecisionChoice choose_precision(const torch::Device& device, Precision requested,
                                 const StamConfig& config) {
  if (requested != Precision::kAuto) return {requested, "requested", 0, 0};
  if (!device.is_cpu()) return {Precision::kFp16, "auto: on " + device.str(), 0, 0};
  if (!cpu_info().has("avx512_bf16") && !cpu_info().has("amx_bf16"))
    return {Precision::kFp32, "auto: this CPU has no bf16 instructions", 0, 0};
  const int64_t grid = config.image_size / config.patch_size;
  return measure_cpu_precision(grid * grid + 1, config.embed_dim, config.mlp_hidden);
}

int usable_cpu_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

namespace {
std::atomic<int> leases{0};
std::atomic<int> threads_asked{0}, cores{0};  // set by configure_cpu_runtime

}  // namespace

DecodeLease::DecodeLease() {
  ++leases;
}
DecodeLease::~DecodeLease() {
  --leases;
}

int model_threads(int asked, int cores, int leases) {
  return leases == 0 ? asked : std::max(1, std::min(asked, cores - leases));
}

void fit_threads_to_decoding() {
  if (threads_asked == 0) return;
  const int n = model_threads(threads_asked, cores, leases);
  if (n == at::get_num_threads()) return;
  set_calling_thread_count(n);
}

void configure_cpu_runtime(int threads) {
  cores = usable_cpu_cores();
  threads_asked = threads > 0 ? threads : cores.load();
  if (threads_asked > cores)
    spdlog::warn(
        "--threads {} on {} usable core{}: threads beyond the cores wait for each other "
        "and make the model slower, not faster",
        threads_asked.load(), cores.load(), cores == 1 ? "" : "s");
  at::set_num_threads(threads_asked);
  // glibc serves blocks above its mmap threshold with fresh mappings and unmaps them on free;
  // the model's largest block (its scratch buffer, 8 frames x 197 tokens x 3072 x 4 B = 19 MiB)
  // sits below 32 MiB, glibc's upper bound for the threshold, so it is reused from the heap.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  // Free memory at the top of an arena beyond 16 MiB goes back to the OS. malloc_trim() cannot
  // return the top of a thread's own arena, so with a higher threshold what a 1080p decode
  // frees (~20 MB) stayed resident through the model's run. The model's blocks reuse one
  // buffer, so what they free and allocate again per block stays below it.
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

void lower_thread_priority() {
  // Best effort: a thread that keeps its priority only competes harder with the model.
  setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace stam
