#pragma once
// What this CPU can do and which matrix-multiply kernels run on it.
//
// Debian's LibTorch sends every fp32 Linear layer to the system BLAS (OpenBLAS). OpenBLAS picks
// its kernels from the CPU *model*, and on models it does not know (new or virtualised CPUs) it
// falls back to SSE3 kernels that are 4-7x slower than the AVX-512 ones the CPU supports. stam
// therefore chooses the kernels from the CPU's *features* instead, through OpenBLAS's own
// OPENBLAS_CORETYPE setting, before OpenBLAS starts (see select_blas_kernels_at_startup()). The
// model's own products do not depend on it: they run on oneDNN (linear.hpp).
#include <string>
#include <vector>

namespace stam {

struct CpuInfo {
  std::string model;                  // brand string, e.g. "Intel(R) Xeon(R) Processor @ 2.80GHz"
  std::vector<std::string> features;  // usable (CPU and OS) SIMD features: avx2 fma avx512f ...
  bool has(const std::string& feature) const;
};

// Read once with cpuid and xgetbv (a feature counts only when the OS saves its registers).
const CpuInfo& cpu_info();

// OpenBLAS's name for the best kernels this CPU's features allow: "SkylakeX" (AVX-512),
// "Haswell" (AVX2 + FMA), or "" when OpenBLAS's own choice cannot be bettered.
std::string best_openblas_core();

// How the process's fp32 matrix products are computed, for bench/info and -v.
struct GemmBackend {
  std::string library;    // "OpenBLAS 0.3.21" or "BLAS (libblas.so.3)"
  std::string kernels;    // OpenBLAS's core name, e.g. "SkylakeX"; "" when unknown
  std::string chosen_by;  // "stam (CPU features)", "OPENBLAS_CORETYPE", "OpenBLAS (CPU model)"
  std::string describe() const;  // one line: "OpenBLAS 0.3.21, SkylakeX kernels (chosen by ...)"
};
GemmBackend gemm_backend();

// Makes OpenBLAS start with best_openblas_core() unless the user set OPENBLAS_CORETYPE.
// OpenBLAS reads that variable when it initialises, before main() and before any C++ static
// constructor; at that point only an ELF .preinit_array entry of the executable has run, and
// libc has not yet set `environ`. So this re-executes the program (execve of /proc/self/exe)
// with the variable added: nothing heavy has run yet, LibTorch initialises later. Executables
// call it through STAM_SELECT_BLAS_KERNELS() below. Returns only when nothing was to be done (or
// the re-execution failed: OpenBLAS then keeps its own choice).
void select_blas_kernels_at_startup(char** argv, char** envp);

}  // namespace stam

// Place once in an executable's main file: runs select_blas_kernels_at_startup() before any
// shared library initialises (.preinit_array is honoured only in executables).
#define STAM_SELECT_BLAS_KERNELS()                                                        \
  extern "C" {                                                                            \
  static void stam_preinit_blas(int, char** argv, char** envp) {                          \
    stam::select_blas_kernels_at_startup(argv, envp);                                     \
  }                                                                                       \
  __attribute__((section(".preinit_array"),                                               \
                 used)) static void (*stam_preinit_blas_ptr)(int, char**,                 \
                                                             char**) = stam_preinit_blas; \
  }
