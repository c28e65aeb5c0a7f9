#pragma once
// Rendering results: JSON records (classify --format json, batch JSONL) and human text.
#include <nlohmann/json.hpp>

#include <string>

#include "stam/pipeline.hpp"

namespace stam {

// {"input", "frames", "frame_indices", "top_k": [{"index","label","score"}], "timings_ms":
//  {"decode","preprocess","spatial","temporal","total"}, "device", "precision"[, "logits"]}
nlohmann::json to_json(const Result& r, bool with_logits);
// {"input": ..., "error": ...}
nlohmann::json error_json(const std::string& input, const std::string& message);

// A readable top-k table followed by a timings line.
std::string to_text(const Result& r);

}  // namespace stam
