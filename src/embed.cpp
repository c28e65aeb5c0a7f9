#include "embed.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "output.hpp"
#include "stam/error.hpp"
#include "util/npy.hpp"

namespace fs = std::filesystem;

namespace stam {

namespace {

std::vector<float> to_floats(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU, torch::kFloat).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

// Why the last failed file operation failed, as the system says it ("Permission denied").
std::string system_reason() {
  return errno != 0 ? std::strerror(errno) : "the system gave no reason";
}

std::ofstream open_output(const std::string& path) {
  errno = 0;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw UsageError("cannot write '" + path + "': " + system_reason());
  errno = 0;  // from here on, only this file's writes set it
  return out;
}

void close_output(std::ofstream& out, const std::string& path) {
  out.close();
  if (!out) throw UsageError("cannot write '" + path + "': " + system_reason());
}

// The nested JSON array of `values` with `shape` (row-major).
nlohmann::ordered_json nested(const float* values, const std::vector<int64_t>& shape, size_t dim) {
  auto json = nlohmann::ordered_json::array();
  const int64_t inner = std::accumulate(shape.begin() + static_cast<std::ptrdiff_t>(dim) + 1,
                                        shape.end(), int64_t{1}, std::multiplies<>());
  for (int64_t i = 0; i < shape[dim]; ++i) {
    if (dim + 1 == shape.size())
      json.push_back(values[i]);
    else
      json.push_back(nested(values + i * inner, shape, dim + 1));
  }
  return json;
}

void write_jsonl(const std::string& path, const std::vector<Embedding>& embeddings,
                 const std::vector<int64_t>& row_shape) {
  std::ofstream out = open_output(path);
  for (const auto& e : embeddings) out << dump_json(embedding_json(e, row_shape)) << '\n';
  close_output(out, path);
}

}  // namespace

std::vector<int64_t> embedding_shape(const StamConfig& config, bool per_frame) {
  if (per_frame) return {config.frames, config.embed_dim};
  return {config.embed_dim};
}

nlohmann::ordered_json embedding_json(const Embedding& e, const std::vector<int64_t>& row_shape) {
  nlohmann::ordered_json j;
  j["input"] = path_text(e.input);
  j["embedding"] = nested(e.values.data(), row_shape, 0);
  if (!e.warnings.empty()) j["warnings"] = e.warnings;
  return j;
}

Embedding embed(Classifier& classifier, const std::string& input, bool per_frame) {
  return embed(classifier, classifier.prepare(input), input, per_frame);
}

Embedding embed(Classifier& classifier, const Clip& clip, const std::string& input,
                bool per_frame) {
  c10::InferenceMode guard;
  torch::Tensor frames = classifier.encode_frames(clip.pixels);
  if (per_frame) return {input, to_floats(frames), clip.warnings};
  return {input, to_floats(classifier.encode_clips(frames.unsqueeze(0))[0]), clip.warnings};
}

Embeddings embed_each(const ModelOptions& options, const std::vector<std::string>& inputs,
                      bool per_frame) {
  Embeddings out;
  const CheckedInputs checked = check_inputs(inputs);
  if (checked.readable.size() < inputs.size()) out.worst = static_cast<int>(Exit::kInput);
  if (checked.readable.empty()) return out;
  Classifier classifier(options);
  for (const auto& input : checked.readable) {
    try {
      out.rows.push_back(embed(classifier, input, per_frame));
    } catch (const Error& e) {
      spdlog::error("{}", e.what());
      out.worst = std::max(out.worst, static_cast<int>(e.code()));
    }
  }
  out.row_shape = embedding_shape(classifier.config(), per_frame);
  return out;
}

EmbedFormat embed_format(const std::string& output) {
  const std::string ext = ascii_lower(fs::path(output).extension().string());
  if (ext == ".npy") return EmbedFormat::kNpy;
  if (ext == ".jsonl") return EmbedFormat::kJsonl;
  const std::string name = ascii_lower(fs::path(output).filename().string());
  if (name == ".npy" || name == ".jsonl")  // a dot-file, with no extension of its own
    throw UsageError("--output '" + output + "': give the file a name before " + name);
  throw UsageError("--output '" + output + "': name it .npy (NumPy array) or .jsonl (JSON lines)");
}

std::string paths_file(const std::string& npy) {
  return fs::path(npy).replace_extension(".paths.txt").string();
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape,
               const std::vector<float>& data) {
  std::ofstream out = open_output(path);
  out << npy_header("<f4", shape);
  static_assert(sizeof(float) == 4, "npy '<f4' needs 32-bit floats");
  out.write(reinterpret_cast<const char*>(data.data()),
            static_cast<std::streamsize>(data.size() * sizeof(float)));
  close_output(out, path);
}

void write_embeddings(const std::string& output, const std::vector<Embedding>& embeddings,
                      const std::vector<int64_t>& row_shape) {
  if (embed_format(output) == EmbedFormat::kJsonl)
    return write_jsonl(output, embeddings, row_shape);
  std::vector<int64_t> shape{static_cast<int64_t>(embeddings.size())};
  shape.insert(shape.end(), row_shape.begin(), row_shape.end());
  std::vector<float> data;
  std::string paths;
  for (const auto& e : embeddings) {
    data.insert(data.end(), e.values.begin(), e.values.end());
    paths += path_line(e.input) + '\n';
  }
  write_npy(output, shape, data);
  const std::string list = paths_file(output);
  std::ofstream out = open_output(list);
  out << paths;
  close_output(out, list);
}

}  // namespace stam
