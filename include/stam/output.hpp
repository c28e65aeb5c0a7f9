#pragma once
// Rendering results: JSON records (classify --format json, batch JSONL) and human text.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stam/pipeline.hpp"

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
// One number through a printf pattern ("%.1f"), for tables and labels.
std::string format_number(const char* pattern, double v);
// `v` rounded to 1/`per_unit` (10: tenths), as the double nearest that decimal, which JSON
// prints short (866.8; multiplying by 0.1 instead gave 866.8000000000001).
double round_to(double v, double per_unit);
// `s` with its ASCII letters in lower case: for file extensions and names compared as such.
std::string ascii_lower(std::string s);
// Lower-case extensions, without the dot, of the files taken for videos in a folder (by batch
// without --ext, and to tell a folder of videos from a frames folder in an error).
const std::vector<std::string>& video_extensions();
// Case-insensitive match of the path's last extension against `exts` (lower-case, no dot).
bool has_extension(const std::string& path, const std::vector<std::string>& exts);

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not valid UTF-8 (overlong
// forms, surrogates and code points above U+10FFFF included).
size_t utf8_length(std::string_view s, size_t i);

// A file name as JSON and CSV can hold it: each byte that is not part of a valid UTF-8 sequence
// written as \xHH (as bash's $'...' quoting does), and so is a backslash (\x5C), so that every
// backslash starts an escape: names differing only in such bytes (Latin-1 names, say) stay
// apart, and none can be spelled as another's escape. Other names are unchanged.
std::string path_text(const std::string& path);
// path_text() for a text file of one name a line: characters a reader may take for a line break
// (control characters such as a newline, U+0085, U+2028, U+2029) as \xHH bytes too.
std::string path_line(const std::string& path);
// `text` with only its invalid UTF-8 bytes as \xHH: for text that may already hold path_text()
// escapes (a record read back), whose backslashes must stay as they are.
std::string valid_utf8_text(const std::string& text);

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
