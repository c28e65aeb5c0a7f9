#include "onednn.hpp"

#include <ATen/Parallel.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace stam::onednn {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

std::optional<dnnl::memory::data_type> data_type(c10::ScalarType t) {
  if (t == torch::kFloat) return dnnl::memory::data_type::f32;
  if (t == torch::kBFloat16) return dnnl::memory::data_type::bf16;
  return std::nullopt;
}

dnnl::primitive& cached(const std::string& key, const std::function<dnnl::primitive()>& make) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<dnnl::primitive>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  // oneDNN fixes how a primitive splits its work among threads when it builds it, for the
  // calling thread's OpenMP count then; the model's count changes while clips decode beside it.
  auto& slot = cache[key + " threads " + std::to_string(at::get_num_threads())];
  if (!slot) slot = std::make_unique<dnnl::primitive>(make());
  return *slot;
}

dnnl::memory wrap(const dnnl::memory::desc& md, const torch::Tensor& t, int64_t element_offset) {
  auto* base = static_cast<char*>(t.data_ptr()) + element_offset * t.element_size();
  return dnnl::memory(md, engine(), base);
}

}  // namespace stam::onednn
