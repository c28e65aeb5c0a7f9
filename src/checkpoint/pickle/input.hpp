#pragma once
// Internal to src/pickle/: reads the operands of pickle opcodes from a Source. Every length is
// checked against the bytes left before anything is allocated, and every failure names the
// byte position of the opcode being read.
#include <cstdint>
#include <string>

#include "checkpoint/pickle/pickle.hpp"

namespace stam::pickle::detail {

class Input {
 public:
  explicit Input(Source& src) : src_(src) {}

  // Reads the next opcode byte and remembers where it was, for messages.
  uint8_t opcode();
  uint64_t op_pos() const { return op_pos_; }
  [[noreturn]] void fail(const std::string& what) const;

  // An unsigned little-endian integer of n <= 8 bytes.
  uint64_t le(size_t n);
  uint8_t u8() { return uint8_t(le(1)); }
  // n raw bytes; fails before allocating when fewer are left.
  std::string bytes(uint64_t n);
  // 8 bytes as a big-endian IEEE double (BINFLOAT).
  double big_endian_double();
  // Text up to the next newline (protocol 0), without it.
  std::string line();
  // A decimal int64 on a line of its own, or `s` parsed the same way.
  int64_t line_int();
  int64_t parse_int(const std::string& s) const;

 private:
  void need(uint64_t n) const;

  Source& src_;
  uint64_t op_pos_ = 0;
};

}  // namespace stam::pickle::detail
