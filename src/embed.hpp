#pragma once
// stam embed: video embeddings for search and clustering. The clip embedding is the temporal
// encoder's CLS output after its final norm (what the head reads); per frame, the spatial
// encoder's CLS output. Written as a NumPy .npy array (with the inputs, one a line, in a
// .paths.txt beside it) or as JSON lines.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/pipeline.hpp"

namespace stam {

struct Embedding {
  std::string input;
  std::vector<float> values;          // D (clip), or T x D row-major (per frame)
  std::vector<std::string> warnings;  // the clip's (decode.hpp), as classify reports them
};

// Decodes, samples and preprocesses `input` as classify does and returns its clip embedding, or
// with `per_frame` its T frame embeddings. Throws InputError.
Embedding embed(Classifier& classifier, const std::string& input, bool per_frame);
// The same from a clip already prepared (Classifier::prepare or a ClipReader of its shape).
Embedding embed(Classifier& classifier, const Clip& clip, const std::string& input, bool per_frame);

// The embeddings of `inputs` with one model, as `stam embed` makes them: inputs are checked
// first (check_inputs) and no model is loaded when none passed; one that fails is logged and
// left out, the others go on. Throws what load_model throws.
struct Embeddings {
  std::vector<Embedding> rows;     // the inputs embedded, in order
  std::vector<int64_t> row_shape;  // {D}, or {T, D} per frame; empty when no model was loaded
  int worst = 0;                   // the worst exit code of the inputs left out
};
Embeddings embed_each(const ModelOptions& options, const std::vector<std::string>& inputs,
                      bool per_frame);

// An embedding's shape: {D}, or {T, D} per frame.
std::vector<int64_t> embedding_shape(const StamConfig& config, bool per_frame);
// One embedding as a JSON line of `stam embed --output FILE.jsonl` has it: {"input", "embedding"
// (nested as row_shape)[, "warnings"]}.
nlohmann::ordered_json embedding_json(const Embedding& e, const std::vector<int64_t>& row_shape);

enum class EmbedFormat { kNpy, kJsonl };
// By the output's extension: .npy or .jsonl; anything else is a UsageError.
EmbedFormat embed_format(const std::string& output);
// x.npy -> x.paths.txt, beside it.
std::string paths_file(const std::string& npy);

// A float32, C-order NumPy array file (format version 1.0) of `shape` holding `data`. Throws
// UsageError naming the file when it cannot be written.
void write_npy(const std::string& path, const std::vector<int64_t>& shape,
               const std::vector<float>& data);

// Writes the embeddings, each of `row_shape` (e.g. {D} or {T, D}): .npy as an N x row_shape array
// plus the paths file (one input a line, as path_line() writes it: control characters such as a
// newline as \xHH), or .jsonl as {"input": ..., "embedding": [...][, "warnings": [...]]} lines
// (nested as row_shape). Throws UsageError when a file cannot be written.
void write_embeddings(const std::string& output, const std::vector<Embedding>& embeddings,
                      const std::vector<int64_t>& row_shape);

}  // namespace stam
