#pragma once
// Internal to src/pickle/: the pickle machine's stack, its MARKs and its memo. Underflow, a
// missing MARK and an unknown memo key fail through Input::fail, naming the opcode's position.
// DUP, MARK and PUT add entries without making a Value, so each is capped like the Arena: a
// long file of them cannot grow the stack or the memo without bound.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "checkpoint/pickle/pickle.hpp"
#include "input.hpp"

namespace stam::pickle::detail {

class Stack {
 public:
  explicit Stack(const Input& in) : in_(in) {}

  void push(Value* v) {
    if (values_.size() >= Arena::kMaxValues) in_.fail("stack too deep");
    values_.push_back(v);
  }
  Value* pop() {
    Value* v = top();
    values_.pop_back();
    return v;
  }
  Value* top() const {
    if (values_.size() <= floor()) in_.fail("stack underflow");
    return values_.back();
  }

  void mark() {
    if (marks_.size() >= Arena::kMaxValues) in_.fail("too many open MARKs");
    marks_.push_back(values_.size());
  }
  // POP: CPython discards the innermost MARK when nothing was pushed above it.
  void pop_value_or_empty_mark() {
    if (!marks_.empty() && values_.size() == marks_.back()) {
      marks_.pop_back();
    } else {
      pop();
    }
  }
  // The values above the innermost MARK, which is removed.
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) in_.fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(values_.begin() + m, values_.end());
    values_.resize(m);
    return items;
  }

  void memo_put(uint64_t idx) {
    Value* v = top();
    if (memo_.size() >= Arena::kMaxValues && !memo_.count(idx)) in_.fail("memo too large");
    memo_[idx] = v;
  }
  Value* memo_get(uint64_t idx) const {
    auto it = memo_.find(idx);
    if (it == memo_.end()) in_.fail("memo key " + std::to_string(idx) + " was never stored");
    return it->second;
  }
  size_t memo_size() const { return memo_.size(); }

  // STOP: exactly one value and no open MARK.
  Value* result() const {
    if (!marks_.empty()) in_.fail("STOP with an open MARK");
    if (values_.size() != 1)
      in_.fail("STOP with " + std::to_string(values_.size()) + " values on the stack");
    return values_.back();
  }

 private:
  // Values above the innermost MARK belong to it; ops other than mark-consumers may not dig
  // below it, as in CPython.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

  const Input& in_;
  std::vector<Value*> values_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
};

}  // namespace stam::pickle::detail
