#pragma once
// stam info: what a checkpoint holds and what this machine will run it with.
#include <nlohmann/json.hpp>

#include <string>

#include "checkpoint/checkpoint.hpp"
#include "model/model.hpp"

namespace stam {

// {"file", "format", "state_dict_key" ("" = top level), "tensors", "dtype"}; dtype is the one
// storage type of every tensor ("float32"), or each type with its tensor count when they mix
// ("float16 150, float32 2").
nlohmann::ordered_json checkpoint_info(const Checkpoint& ckpt);

// Throws ModelError when a floating-point tensor holds NaN or infinite values (a damaged file, or
// a training run that diverged: such a model gives NaN scores), naming the first such tensor in
// file order, how many of its values are not finite, and how many other tensors have some.
void check_finite(const Checkpoint& ckpt);

// From the architecture alone: {"frames", "classes", "image_size", "patch_size", "embed_dim",
// "depth", "heads", "mlp_hidden", "temporal_layers", "temporal_heads", "temporal_ffn",
// "parameters", "gflop_per_video", "description"}.
nlohmann::ordered_json model_info(const StamConfig& c);

// {"cpu", "cpu_features", "avx512", "avx512_bf16", "amx", "cuda", "cuda_devices", "device",
// "threads", "libtorch", "opencv", "gemm_backend", "blas"}: the device `auto` picks, the
// threads a run uses by default, and the backends of the model's fp32 products and of
// LibTorch's own BLAS.
nlohmann::ordered_json system_info();

// What `stam info` reports: loads the checkpoint at `weights` ("" = the default one) fully, on the
// CPU in fp32 without labels, which proves every tensor is readable, checks it is finite, and
// returns {"checkpoint": checkpoint_info(), "model": model_info(), "system": system_info()}.
// Throws ModelError.
nlohmann::ordered_json describe_checkpoint(const std::string& weights);

// Sections ({"checkpoint": {...}, "model": {...}, ...}) as aligned "key: value" lines under each
// section's name; lists are joined with spaces, booleans read yes/no.
std::string info_text(const nlohmann::ordered_json& sections);

}  // namespace stam
