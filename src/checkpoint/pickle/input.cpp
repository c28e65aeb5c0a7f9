// Opcode operands: fixed-width integers, counted byte strings and protocol-0 text lines.
#include "input.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "values.hpp"

namespace stam::pickle::detail {
namespace {
// Text opcodes (protocol 0) end with a newline; no legitimate line is anywhere near this long.
constexpr size_t kMaxLine = 1 << 16;
}  // namespace

uint8_t Input::opcode() {
  op_pos_ = src_.position();
  return u8();
}

void Input::fail(const std::string& what) const {
  fail_at(op_pos_, what);
}

void Input::need(uint64_t n) const {
  if (n > src_.remaining()) fail("truncated: needs " + std::to_string(n) + " more bytes");
}

uint64_t Input::le(size_t n) {
  uint8_t b[8];
  need(n);
  src_.read(b, n);
  uint64_t u = 0;
  for (size_t k = 0; k < n; ++k) u |= uint64_t(b[k]) << (8 * k);
  return u;
}

std::string Input::bytes(uint64_t n) {
  need(n);  // before allocating: a declared length can never exceed what is left
  std::string s(size_t(n), '\0');
  if (n) src_.read(&s[0], size_t(n));
  return s;
}

double Input::big_endian_double() {
  uint8_t b[8];
  need(8);
  src_.read(b, 8);
  uint64_t u = 0;
  for (uint8_t byte : b) u = (u << 8) | byte;
  double d;
  std::memcpy(&d, &u, sizeof u);
  return d;
}

std::string Input::line() {
  std::string s;
  for (;;) {
    const char c = char(u8());
    if (c == '\n') return s;
    if (s.size() >= kMaxLine) fail("text line too long");
    s += c;
  }
}

int64_t Input::line_int() {
  const std::string s = line();
  if (s.empty() || s.size() > 20) fail("bad decimal integer");
  size_t k = (s[0] == '-') ? 1 : 0;
  if (k == s.size()) fail("bad decimal integer");
  int64_t v = 0;
  for (; k < s.size(); ++k) {
    if (s[k] < '0' || s[k] > '9') fail("bad decimal integer");
    if (v > (std::numeric_limits<int64_t>::max() - (s[k] - '0')) / 10) fail("integer overflow");
    v = v * 10 + (s[k] - '0');
  }
  return s[0] == '-' ? -v : v;
}

int64_t Input::parse_int(const std::string& s) const {
  if (s.empty() || s.size() > 20) fail("bad decimal integer");
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || end != s.c_str() + s.size()) fail("bad decimal integer");
  return v;
}

}  // namespace stam::pickle::detail
