// stam info: the checkpoint, the architecture and the machine, as JSON sections and as text.
#include "info.hpp"

#include <torch/cuda.h>
#include <torch/version.h>
#if STAM_VIDEO
#include <opencv2/core/version.hpp>
#endif

#include <map>
#include <sstream>

#include "cpu.hpp"
#include "device.hpp"
#include "model/linear.hpp"
#include "model/load.hpp"
#include "stam/error.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float:
      return "float32";
    case c10::ScalarType::Half:
      return "float16";
    case c10::ScalarType::BFloat16:
      return "bfloat16";
    case c10::ScalarType::Double:
      return "float64";
    default:
      return c10::toString(t);
  }
}

std::string value_text(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : " ") + value_text(e);
    return s;
  }
  return v.dump();
}

}  // namespace

nlohmann::ordered_json checkpoint_info(const Checkpoint& ckpt) {
  std::map<std::string, int64_t> dtypes;
  for (const auto& e : ckpt.entries()) ++dtypes[dtype_name(e.dtype)];
  std::string dtype;
  for (const auto& [name, count] : dtypes)
    dtype += (dtype.empty() ? "" : ", ") +
             (dtypes.size() == 1 ? name : name + " " + std::to_string(count));
  return {{"file", ckpt.path()},
          {"format", ckpt.format()},
          {"state_dict_key", ckpt.location()},
          {"tensors", ckpt.entries().size()},
          {"dtype", dtype}};
}

void check_finite(const Checkpoint& ckpt) {
  std::string first;
  int64_t others = 0;
  for (const auto& e : ckpt.entries()) {
    if (!c10::isFloatingType(e.dtype)) continue;
    const torch::Tensor t = ckpt.view(e.key);
    const int64_t bad = t.numel() - torch::isfinite(t).sum().item<int64_t>();
    if (bad == 0) continue;
    if (first.empty())
      first = "tensor '" + e.key + "' has " + std::to_string(bad) + " of " +
              std::to_string(t.numel()) + " values NaN or infinite";
    else
      ++others;
  }
  if (first.empty()) return;
  if (others > 0)
    first += ", and " + std::to_string(others) +
             (others == 1 ? " other tensor has some too" : " other tensors have some too");
  throw ModelError(ckpt.path() + ": " + first +
                   "; the file is damaged or its training diverged, and the model would give "
                   "NaN scores");
}

nlohmann::ordered_json model_info(const StamConfig& c) {
  return {{"frames", c.frames},
          {"classes", c.num_classes},
          {"image_size", c.image_size},
          {"patch_size", c.patch_size},
          {"embed_dim", c.embed_dim},
          {"depth", c.depth},
          {"heads", c.num_heads},
          {"mlp_hidden", c.mlp_hidden},
          {"temporal_layers", c.temporal_layers},
          {"temporal_heads", c.temporal_heads},
          {"temporal_ffn", c.temporal_ffn},
          {"parameters", parameter_count(c)},
          {"gflop_per_video", std::stod(format_number("%.1f", gflop_per_video(c, c.frames)))},
          {"description", c.describe()}};
}

nlohmann::ordered_json system_info() {
  const CpuInfo& cpu = cpu_info();
  configure_cpu_runtime(0);
  const torch::Device device = resolve_device("auto");
  return {{"cpu", cpu.model},
          {"cpu_features", cpu.features},
          {"avx512", cpu.has("avx512f")},
          {"avx512_bf16", cpu.has("avx512_bf16")},
          {"amx", cpu.has("amx_tile")},
          {"cuda", torch::cuda::is_available()},
          {"cuda_devices", torch::cuda::device_count()},
          {"device", device.str()},
          {"threads", at::get_num_threads()},
          {"libtorch", TORCH_VERSION},
#if STAM_VIDEO
          {"opencv", CV_VERSION},
#else
          {"opencv", "none (STAM_VIDEO=OFF)"},
#endif
          {"gemm_backend", linear_backend(device, torch::kFloat)},
          {"blas", gemm_backend().describe()}};
}

nlohmann::ordered_json describe_checkpoint(const std::string& weights) {
  ModelOptions options;
  options.weights = weights;
  options.with_labels = false;
  options.device = "cpu";
  options.precision = Precision::kFp32;
  const LoadedModel loaded = load_model(options);
  check_finite(*loaded.checkpoint);
  return {{"checkpoint", checkpoint_info(*loaded.checkpoint)},
          {"model", model_info(loaded.config)},
          {"system", system_info()}};
}

std::string info_text(const nlohmann::ordered_json& sections) {
  std::ostringstream o;
  for (const auto& [section, fields] : sections.items()) {
    o << section << "\n";
    for (const auto& [key, value] : fields.items()) {
      std::string name = key;
      for (char& c : name)
        if (c == '_') c = ' ';
      name += ":";
      o << "  " << name << std::string(name.size() < 18 ? 18 - name.size() : 1, ' ')
        << value_text(value) << "\n";
    }
  }
  return o.str();
}

}  // namespace stam
