#pragma once
// Internal to src/pickle/: the error every part of the interpreter raises, and the builders of
// the Values it produces.
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/pickle/pickle.hpp"

namespace stam::pickle::detail {

// Throws Error("pickle: <what> (opcode at byte <op_pos>)").
[[noreturn]] void fail_at(uint64_t op_pos, const std::string& what);

// Python's name for a kind, for messages.
const char* kind_name(Kind k);
// kInt or kBool (Python's bool is an int).
bool is_int(const Value* v);

Value* make_int(Arena& arena, int64_t i);
Value* make_str(Arena& arena, Kind kind, std::string s);
Value* make_seq(Arena& arena, Kind kind, std::vector<Value*> items);
Value* make_dict(Arena& arena);
// The inert record of calling or instantiating `cls` with `args`.
Value* make_object(Arena& arena, Value* cls, std::vector<Value*> args);
// The little-endian two's complement integer of LONG1 / LONG4: kInt when it fits, else kBigInt.
Value* make_long(Arena& arena, std::string bytes);

}  // namespace stam::pickle::detail
