#pragma once
// Private to the library: the oneDNN engine, stream and primitive cache that linear.cpp and
// attention.cpp share. oneDNN is the same libdnnl that LibTorch itself links.
#include <torch/types.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <functional>
#include <optional>
#include <string>

namespace stam::onednn {

dnnl::engine& engine();
// A stream for the calling thread (oneDNN streams are not shared across threads).
dnnl::stream& stream();

// oneDNN's data type for a LibTorch dtype: f32 and bf16, or nothing for any other.
std::optional<dnnl::memory::data_type> data_type(c10::ScalarType t);

// Returns the primitive built for `key` and the calling thread's OpenMP thread count, building it
// with `make` on first use. Building a primitive JIT-compiles its kernels; shapes repeat every
// forward, so each is built once per thread count.
dnnl::primitive& cached(const std::string& key, const std::function<dnnl::primitive()>& make);

// Wraps a tensor's data in oneDNN memory of descriptor `md` (no copy).
dnnl::memory wrap(const dnnl::memory::desc& md, const torch::Tensor& t, int64_t element_offset = 0);

}  // namespace stam::onednn
