#include "cpu.hpp"

#include <cpuid.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace stam {

namespace {

struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

bool bit(unsigned reg, int n) {
  return (reg >> n) & 1u;
}

// Which register files the OS saves on a context switch (XCR0): SSE|AVX, and the three AVX-512
// states. A feature whose registers the OS does not save is not usable.
struct OsSupport {
  bool avx = false, avx512 = false, amx = false;
};

OsSupport os_support() {
  OsSupport s;
  if (!bit(cpuid(1).c, 27)) return s;  // no OSXSAVE: no xgetbv either
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  s.avx = (lo & 0x6u) == 0x6u;
  s.avx512 = s.avx && (lo & 0xe0u) == 0xe0u;
  s.amx = (lo & 0x60000u) == 0x60000u;
  return s;
}

struct Features {
  bool avx, fma, avx2, avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512_vnni, avx512_bf16,
      avx512_fp16, amx_tile, amx_bf16;
};

Features detect() {
  Features f{};
  const unsigned max_leaf = cpuid(0).a;
  const Regs l1 = cpuid(1);
  const OsSupport os = os_support();
  f.avx = os.avx && bit(l1.c, 28);
  f.fma = f.avx && bit(l1.c, 12);
  if (max_leaf >= 7) {
    const Regs l7 = cpuid(7, 0);
    const Regs l7s1 = cpuid(7, 1);
    f.avx2 = f.avx && bit(l7.b, 5);
    f.avx512f = os.avx512 && bit(l7.b, 16);
    f.avx512dq = f.avx512f && bit(l7.b, 17);
    f.avx512cd = f.avx512f && bit(l7.b, 28);
    f.avx512bw = f.avx512f && bit(l7.b, 30);
    f.avx512vl = f.avx512f && bit(l7.b, 31);
    f.avx512_vnni = f.avx512f && bit(l7.c, 11);
    f.avx512_fp16 = f.avx512f && bit(l7.d, 23);
    f.avx512_bf16 = f.avx512f && bit(l7s1.a, 5);
    f.amx_tile = os.amx && bit(l7.d, 24);
    f.amx_bf16 = f.amx_tile && bit(l7.d, 22);
  }
  return f;
}

std::string brand_string() {
  if (cpuid(0x80000000u).a < 0x80000004u) return "unknown x86-64 CPU";
  char text[49] = {};
  for (unsigned i = 0; i < 3; ++i) {
    const Regs r = cpuid(0x80000002u + i);
    std::memcpy(text + 16 * i, &r, 16);
  }
  std::string s(text);
  s.erase(0, s.find_first_not_of(' '));
  s.erase(s.find_last_not_of(' ') + 1);
  return s;
}

template <typename Fn>
Fn blas_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

bool CpuInfo::has(const std::string& feature) const {
  return std::find(features.begin(), features.end(), feature) != features.end();
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = [] {
    CpuInfo c;
    c.model = brand_string();
    const Features f = detect();
    const std::pair<bool, const char*> named[] = {{f.avx, "avx"},
                                                  {f.avx2, "avx2"},
                                                  {f.fma, "fma"},
                                                  {f.avx512f, "avx512f"},
                                                  {f.avx512dq, "avx512dq"},
                                                  {f.avx512cd, "avx512cd"},
                                                  {f.avx512bw, "avx512bw"},
                                                  {f.avx512vl, "avx512vl"},
                                                  {f.avx512_vnni, "avx512_vnni"},
                                                  {f.avx512_bf16, "avx512_bf16"},
                                                  {f.avx512_fp16, "avx512_fp16"},
                                                  {f.amx_tile, "amx_tile"},
                                                  {f.amx_bf16, "amx_bf16"}};
    for (const auto& [present, name] : named)
      if (present) c.features.emplace_back(name);
    return c;
  }();
  return info;
}

std::string GemmBackend::describe() const {
  std::string s = library;
  if (!kernels.empty()) s += ", " + kernels + " kernels";
  if (!chosen_by.empty()) s += " (chosen by " + chosen_by + ")";
  return s;
}

GemmBackend gemm_backend() {
  GemmBackend g;
  using Text = char* (*)();
  const auto config = blas_symbol<Text>("openblas_get_config");
  const auto corename = blas_symbol<Text>("openblas_get_corename");
  if (!config || !corename) {
    g.library = "BLAS (libblas.so.3)";
    return g;
  }
  // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..." -> "OpenBLAS 0.3.21"
  std::string c = config();
  const auto second_space = c.find(' ', c.find(' ') + 1);
  g.library = c.substr(0, second_space);
  g.kernels = corename();
  g.chosen_by =
      std::getenv("OPENBLAS_CORETYPE") ? "OPENBLAS_CORETYPE" : "OpenBLAS from the CPU model";
  return g;
}

}  // namespace stam
