#pragma once
// What this CPU can do and which matrix-multiply kernels run on it.
//
// Debian's LibTorch sends every fp32 Linear layer to the system BLAS (OpenBLAS). OpenBLAS picks
// its kernels from the CPU *model*, and on models it does not know (new or virtualised CPUs) it
// falls back to SSE3 kernels that are 4-7x slower than the AVX-512 ones the CPU supports. The
// model's products therefore never go through it: they run on oneDNN, which picks its kernels
// from the CPU's *features* (linear.hpp). OpenBLAS is only named here, for bench, info and -v.
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

// The BLAS behind LibTorch's own products (addmm and friends; not the model's), for bench/info
// and -v.
struct GemmBackend {
  std::string library;           // "OpenBLAS 0.3.21" or "BLAS (libblas.so.3)"
  std::string kernels;           // OpenBLAS's core name, e.g. "SkylakeX"; "" when unknown
  std::string chosen_by;         // "OPENBLAS_CORETYPE" or "OpenBLAS from the CPU model"
  std::string describe() const;  // one line: "OpenBLAS 0.3.21, SkylakeX kernels (chosen by ...)"
};
GemmBackend gemm_backend();

}  // namespace stam
