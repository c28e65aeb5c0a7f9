#pragma once
// Which frames of a video to feed the model.
#include <cstdint>
#include <string>
#include <vector>

#include "stam/stam.hpp"

namespace stam {

// i -> min(n-1, floor((2i+1) * n / (2t))), i = 0..t-1. Repeats frames when n < t. n >= 1.
std::vector<int64_t> uniform_indices(int64_t n, int64_t t);

// torchvision VideoClips' first clip: positions floor(k * fps / r) with r = t / 10 fps,
// the product in float32, k = 0..t-1; positions past the end are clamped to n-1 (the reference
// would drop such a video; a tool must not).
std::vector<int64_t> reference_indices(int64_t n, double fps, int64_t t);

// Dispatches on `s`.
std::vector<int64_t> sample_indices(Sampling s, int64_t n, double fps, int64_t t);

}  // namespace stam
