#pragma once
// Rendering results: JSON records (classify --format json, batch JSONL) and human text.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/pipeline.hpp"
#include "util/text.hpp"

namespace stam {

// Keys in this fixed order (README.md documents it), times rounded to 0.1 ms:
// {"input", "frames", "frame_indices", "top_k": [{"index","label","score"}], "timings_ms":
//  {"decode","preprocess","spatial","temporal","total"}, "device", "precision"[, "warnings":
//  [sentence, ...] only when there are any][, "logits"]}
nlohmann::ordered_json to_json(const Result& r, bool with_logits);
// [{"index","label","score"}, ...], as in to_json.
nlohmann::ordered_json top_k_json(const std::vector<Prediction>& top_k);
// {"input": ..., "error": ...}
nlohmann::ordered_json error_json(const std::string& input, const std::string& message);
// Refuses, before any work, an output whose file could not be created: one in a folder that does
// not exist (more likely a typo than a wish for a new tree: only the file is ever created), a
// directory, or a file that cannot be opened for writing (permissions, a read-only or virtual
// file system). Leaves an existing file as it is. Throws UsageError naming `flag` and the path.
void check_output_path(const std::string& path, const std::string& flag);

// `indent` < 0: one line. Invalid UTF-8 (possible in file names) becomes U+FFFD, so the text is
// always valid JSON.
std::string dump_json(const nlohmann::ordered_json& j, int indent = -1);

// A readable top-k table followed by a timings line, which starts with the model load time when
// `load_ms` is given, and the warnings, if any, one a line.
std::string to_text(const Result& r, std::optional<double> load_ms = std::nullopt);

}  // namespace stam
