#pragma once
// Internal to src/pickle/: what REDUCE and NEWOBJ make of a global. The few callables that
// torch.save emits (OrderedDict, the tensor and parameter rebuild functions, _codecs.encode,
// set / frozenset) are re-implemented as plain data constructors; anything else becomes an
// inert Object that records the call. Nothing is ever imported or run.
#include <cstdint>

#include "checkpoint/pickle/pickle.hpp"

namespace stam::pickle::detail {

// REDUCE: callable(*args). Fails (naming `op_pos`) on malformed rebuild arguments.
Value* reduce(Arena& arena, uint64_t op_pos, Value* callable, Value* args);
// NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args).
Value* newobj(Arena& arena, uint64_t op_pos, Value* cls, Value* args);

}  // namespace stam::pickle::detail
