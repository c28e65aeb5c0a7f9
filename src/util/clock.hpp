#pragma once
// The clock that stage timings read, and the milliseconds since one of its readings.
#include <chrono>

namespace stam {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace stam
