// The object model of the pickle interpreter: Values, the Arena that owns them, and the
// in-memory Source.
#include "values.hpp"

#include <cstring>

namespace stam::pickle {
namespace detail {

void fail_at(uint64_t op_pos, const std::string& what) {
  throw Error("pickle: " + what + " (opcode at byte " + std::to_string(op_pos) + ")");
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kBigInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kSet:
      return "set";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kObject:
      return "object";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

bool is_int(const Value* v) {
  return v->kind == Kind::kInt || v->kind == Kind::kBool;
}

Value* make_int(Arena& arena, int64_t i) {
  Value* v = arena.make(Kind::kInt);
  v->i = i;
  return v;
}

Value* make_str(Arena& arena, Kind kind, std::string s) {
  Value* v = arena.make(kind);
  v->str = std::move(s);
  return v;
}

Value* make_seq(Arena& arena, Kind kind, std::vector<Value*> items) {
  Value* v = arena.make(kind);
  v->items = std::move(items);
  return v;
}

Value* make_dict(Arena& arena) {
  Value* v = arena.make(Kind::kDict);
  v->dict = std::make_unique<DictData>();
  return v;
}

Value* make_object(Arena& arena, Value* cls, std::vector<Value*> args) {
  Value* v = make_seq(arena, Kind::kObject, std::move(args));
  v->cls = cls;
  return v;
}

Value* make_long(Arena& arena, std::string bytes) {
  if (bytes.size() > 8) return make_str(arena, Kind::kBigInt, std::move(bytes));
  uint64_t u = 0;
  for (size_t k = 0; k < bytes.size(); ++k) u |= uint64_t(uint8_t(bytes[k])) << (8 * k);
  if (!bytes.empty() && bytes.size() < 8 && (uint8_t(bytes.back()) & 0x80))
    u |= ~uint64_t(0) << (8 * bytes.size());  // sign-extend
  Value* v = arena.make(Kind::kInt);
  std::memcpy(&v->i, &u, sizeof u);
  return v;
}

}  // namespace detail

Value* Value::get(const std::string& key) const {
  if (kind != Kind::kDict) return nullptr;
  auto it = dict->index.find("s" + key);
  return it == dict->index.end() ? nullptr : dict->items[it->second].second;
}

Value* Arena::make(Kind kind) {
  if (values_.size() >= kMaxValues)
    throw Error("pickle: more than " + std::to_string(kMaxValues) + " values");
  return &values_.emplace_back(kind);
}

void MemorySource::read(void* dst, size_t n) {
  if (n > size_ - pos_) throw Error("pickle: truncated at byte " + std::to_string(size_));
  std::memcpy(dst, data_ + pos_, n);
  pos_ += n;
}

}  // namespace stam::pickle
