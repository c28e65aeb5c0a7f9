#include "device.hpp"

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

#include "stam/error.hpp"

namespace stam {

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

}  // namespace

ScopedThreads::ScopedThreads(int n) : before_(at::get_num_threads()) {
  set_calling_thread_count(n);
}
ScopedThreads::~ScopedThreads() {
  set_calling_thread_count(before_);
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
