#include "stam/output.hpp"

#include "stam/error.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace stam {

size_t utf8_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) >= 0xA0)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) >= 0x90)) return 0;
    return 4;
  }
  return 0;
}

void check_output_path(const std::string& path, const std::string& flag) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw UsageError(flag + " " + path + " is a directory; give a file path");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    throw UsageError(flag + " " + path + ": folder " + parent.string() +
                     " does not exist; create it first");
  // Open it as the write will (creating it, truncating nothing); a file made only for the
  // question is removed again. Only a regular file or a new one: opening a FIFO to write waits
  // for a reader (the callers that refuse such outputs say so in their own words).
  const auto status = std::filesystem::status(path, ec);
  const bool existed = std::filesystem::exists(status);
  if (existed && !std::filesystem::is_regular_file(status)) return;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    throw UsageError(flag + " " + path + ": cannot be written (" + std::strerror(err) + ")");
  }
  ::close(fd);
  if (!existed) ::unlink(path.c_str());
}

namespace {

// True when the character of `n` bytes at text[i] may be taken for a line break: a control
// character or DEL, or U+0085, U+2028, U+2029 (Python's str.splitlines() breaks at these too).
bool breaks_lines(std::string_view text, size_t i, size_t n) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (n == 1) return c < 0x20 || c == 0x7F;
  const std::string_view ch = text.substr(i, n);
  return ch == "\xC2\x85" || ch == "\xE2\x80\xA8" || ch == "\xE2\x80\xA9";
}

// `text` with each byte outside a valid UTF-8 sequence as \xHH; with `backslash`, backslashes
// too; with `line_breaks`, the bytes of every character breaks_lines() names.
std::string escaped(const std::string& text, bool backslash, bool line_breaks) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    const bool keep =
        n != 0 && !(backslash && text[i] == '\\') && !(line_breaks && breaks_lines(text, i, n));
    if (keep) {
      out.append(text, i, n);
      i += n;
      continue;
    }
    for (const size_t end = i + std::max<size_t>(n, 1); i < end; ++i) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", static_cast<unsigned char>(text[i]));
      out += hex;
    }
  }
  return out;
}

}  // namespace

std::string path_text(const std::string& path) {
  return escaped(path, true, false);
}

std::string path_line(const std::string& path) {
  return escaped(path, true, true);
}

std::string valid_utf8_text(const std::string& text) {
  return escaped(text, false, false);
}

double round_to(double v, double per_unit) {
  return std::round(v * per_unit) / per_unit;
}

std::string ascii_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const std::vector<std::string>& video_extensions() {
  static const std::vector<std::string> exts = {"3gp", "avi", "flv",  "m2ts", "m4v", "mkv",
                                                "mov", "mp4", "mpeg", "mpg",  "mts", "mxf",
                                                "ogv", "ts",  "webm", "wmv"};
  return exts;
}

bool has_extension(const std::string& path, const std::vector<std::string>& exts) {
  std::string ext = std::filesystem::path(path).extension().string();
  if (ext.size() < 2) return false;
  ext = ascii_lower(ext.substr(1));
  return std::find(exts.begin(), exts.end(), ext) != exts.end();
}

std::string format_number(const char* pattern, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, v);
  return buf;
}

nlohmann::ordered_json top_k_json(const std::vector<Prediction>& top_k) {
  auto top = nlohmann::ordered_json::array();
  for (const auto& p : top_k) {
    nlohmann::ordered_json entry;  // assigned key by key: an initializer list could be an array
    entry["index"] = p.index;
    entry["label"] = p.label;
    entry["score"] = p.score;
    top.push_back(std::move(entry));
  }
  return top;
}

nlohmann::ordered_json to_json(const Result& r, bool with_logits) {
  using Json = nlohmann::ordered_json;
  Json timings;
  timings["decode"] = round_to(r.timings.decode_ms, 10);
  timings["preprocess"] = round_to(r.timings.preprocess_ms, 10);
  timings["spatial"] = round_to(r.timings.spatial_ms, 10);
  timings["temporal"] = round_to(r.timings.temporal_ms, 10);
  timings["total"] = round_to(r.timings.total_ms, 10);
  Json j;
  j["input"] = path_text(r.input);
  j["frames"] = r.frames;
  j["frame_indices"] = r.frame_indices;
  j["top_k"] = top_k_json(r.top_k);
  j["timings_ms"] = std::move(timings);
  j["device"] = r.device;
  j["precision"] = r.precision;
  if (!r.warnings.empty()) j["warnings"] = r.warnings;
  if (with_logits) j["logits"] = r.logits;
  return j;
}

nlohmann::ordered_json error_json(const std::string& input, const std::string& message) {
  nlohmann::ordered_json j;
  j["input"] = path_text(input);
  j["error"] = message;
  return j;
}

std::string dump_json(const nlohmann::ordered_json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string to_text(const Result& r, std::optional<double> load_ms) {
  std::ostringstream o;
  o << r.input << ": " << r.frames << (r.frames == 1 ? " frame, index" : " frames, indices");
  for (auto i : r.frame_indices) o << ' ' << i;
  o << "\n\n  rank  score   class\n";
  for (size_t i = 0; i < r.top_k.size(); ++i)
    o << format_number("  %4.0f", static_cast<double>(i + 1))
      << format_number("  %6.4f", r.top_k[i].score) << "  " << r.top_k[i].label << " ("
      << r.top_k[i].index << ")\n";
  const auto& t = r.timings;
  o << "\ntimings: ";
  if (load_ms) o << "model load " << format_number("%.1f", *load_ms) << " ms | ";
  o << "decode " << format_number("%.1f", t.decode_ms) << " ms | preprocess "
    << format_number("%.1f", t.preprocess_ms) << " ms | spatial "
    << format_number("%.1f", t.spatial_ms) << " ms | temporal "
    << format_number("%.1f", t.temporal_ms) << " ms | total " << format_number("%.1f", t.total_ms)
    << " ms | " << r.device << " " << r.precision << "\n";
  if (!r.warnings.empty()) {
    o << "\nwarnings:\n";
    for (const auto& w : r.warnings) o << "  - " << w << "\n";
  }
  return o.str();
}

}  // namespace stam
