#include "util/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

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

std::string quoted_path(const std::string& path) {
  return "'" + path_line(path) + "'";
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

namespace {

bool needs_quotes(std::string_view f) {
  for (char c : f) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ',' || c == '"' || c == '\r' || c == '\n' || c == ' ' || c == '\t' || u >= 0x80)
      return true;
  }
  return false;
}

}  // namespace

std::string csv_field(std::string_view field) {
  if (!needs_quotes(field)) return std::string(field);
  std::string q = "\"";
  for (char c : field) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

}  // namespace stam
