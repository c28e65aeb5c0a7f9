// The pickle machine: dispatches each opcode to the stack, the object model (values.hpp) or the
// torch call table (torch_calls.hpp). See pickle.hpp for what it does and does not do.
#include <cstdio>
#include <cstdlib>

#include "input.hpp"
#include "stack.hpp"
#include "torch_calls.hpp"
#include "values.hpp"

namespace stam::pickle {
namespace {

using namespace detail;

// Opcode bytes, named as in Python's pickletools.
enum Op : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  FLOAT = 'F',
  INT = 'I',
  BININT = 'J',
  BININT1 = 'K',
  LONG = 'L',
  BININT2 = 'M',
  NONE = 'N',
  PERSID = 'P',
  BINPERSID = 'Q',
  REDUCE = 'R',
  STRING = 'S',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  UNICODE = 'V',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  EMPTY_DICT = '}',
  APPENDS = 'e',
  GET = 'g',
  BINGET = 'h',
  INST = 'i',
  LONG_BINGET = 'j',
  LIST = 'l',
  EMPTY_LIST = ']',
  OBJ = 'o',
  PUT = 'p',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  BINFLOAT = 'G',
  PROTO = 0x80,
  NEWOBJ = 0x81,
  EXT1 = 0x82,
  EXT2 = 0x83,
  EXT4 = 0x84,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  ADDITEMS = 0x90,
  FROZENSET = 0x91,
  NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  BYTEARRAY8 = 0x96,
  NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98,
};

// Key under which DictData::index remembers a str or int key; empty for other key kinds,
// which are appended without de-duplication (they never matter to a checkpoint reader).
std::string index_key(const Value* key) {
  if (key->kind == Kind::kString) return "s" + key->str;
  if (is_int(key)) return "i" + std::to_string(key->i);
  return {};
}

class Unpickler {
 public:
  Unpickler(Source& src, Arena& arena, const PersistentLoad& persistent_load)
      : in_(src), stack_(in_), arena_(arena), persistent_load_(persistent_load) {}

  Value* run() {
    for (uint8_t op = in_.opcode(); op != STOP; op = in_.opcode()) {
      if (!(frame_op(op) || scalar_op(op) || container_op(op) || object_op(op) || text_op(op))) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        in_.fail(std::string("unknown opcode ") + hex);
      }
    }
    return stack_.result();
  }

 private:
  // Each *_op handles its group of opcodes and returns false for any other.
  bool frame_op(uint8_t op);
  bool scalar_op(uint8_t op);
  bool container_op(uint8_t op);
  bool object_op(uint8_t op);
  bool text_op(uint8_t op);  // protocol 0: rare in checkpoints but cheap to support

  void push(Value* v) { stack_.push(v); }
  Value* make_global(const std::string& module, const std::string& name) {
    if (module.empty() || name.empty()) in_.fail("empty global name");
    return make_str(arena_, Kind::kGlobal, module + " " + name);
  }
  Value* persistent(Value* pid) {
    if (!persistent_load_) in_.fail("persistent id without a loader");
    Value* v = persistent_load_(arena_, pid);
    if (!v) in_.fail("unknown persistent id");
    return v;
  }
  void set_item(Value* target, Value* key, Value* value);
  void set_items(Value* target, const std::vector<Value*>& kv);
  void append(Value* target, std::vector<Value*> items, Kind want);

  Input in_;
  Stack stack_;
  Arena& arena_;
  const PersistentLoad& persistent_load_;
};

bool Unpickler::frame_op(uint8_t op) {
  switch (op) {
    case PROTO:
      if (in_.u8() > 5) in_.fail("unsupported pickle protocol");
      return true;
    case FRAME:
      in_.le(8);  // framing is only a read-ahead hint
      return true;
    case MARK:
      stack_.mark();
      return true;
    case POP:
      stack_.pop_value_or_empty_mark();
      return true;
    case POP_MARK:
      stack_.pop_mark();
      return true;
    case DUP:
      push(stack_.top());
      return true;
    case NEXT_BUFFER:
      in_.fail("out-of-band buffers are not supported");
    case READONLY_BUFFER:
      stack_.top();
      return true;
    case EXT1:
    case EXT2:
    case EXT4:
      in_.fail("extension registry codes are not supported");
    default:
      return false;
  }
}

bool Unpickler::scalar_op(uint8_t op) {
  switch (op) {
    case NONE:
      push(arena_.make(Kind::kNone));
      return true;
    case NEWTRUE:
    case NEWFALSE: {
      Value* v = arena_.make(Kind::kBool);
      v->i = op == NEWTRUE;
      push(v);
      return true;
    }
    case BININT:
      push(make_int(arena_, int32_t(uint32_t(in_.le(4)))));
      return true;
    case BININT1:
      push(make_int(arena_, int64_t(in_.le(1))));
      return true;
    case BININT2:
      push(make_int(arena_, int64_t(in_.le(2))));
      return true;
    case LONG1:
      push(make_long(arena_, in_.bytes(in_.le(1))));
      return true;
    case LONG4: {
      const int32_t n = int32_t(uint32_t(in_.le(4)));
      if (n < 0) in_.fail("negative LONG4 length");
      push(make_long(arena_, in_.bytes(uint64_t(n))));
      return true;
    }
    case BINFLOAT: {
      Value* v = arena_.make(Kind::kFloat);
      v->f = in_.big_endian_double();
      push(v);
      return true;
    }
    case SHORT_BINUNICODE:
    case SHORT_BINSTRING:  // Python 2 str: read as text, as torch.load(encoding='utf-8') does
      push(make_str(arena_, Kind::kString, in_.bytes(in_.le(1))));
      return true;
    case BINUNICODE:
      push(make_str(arena_, Kind::kString, in_.bytes(in_.le(4))));
      return true;
    case BINUNICODE8:
      push(make_str(arena_, Kind::kString, in_.bytes(in_.le(8))));
      return true;
    case BINSTRING: {
      const int32_t n = int32_t(uint32_t(in_.le(4)));
      if (n < 0) in_.fail("negative BINSTRING length");
      push(make_str(arena_, Kind::kString, in_.bytes(uint64_t(n))));
      return true;
    }
    case SHORT_BINBYTES:
      push(make_str(arena_, Kind::kBytes, in_.bytes(in_.le(1))));
      return true;
    case BINBYTES:
      push(make_str(arena_, Kind::kBytes, in_.bytes(in_.le(4))));
      return true;
    case BINBYTES8:
    case BYTEARRAY8:
      push(make_str(arena_, Kind::kBytes, in_.bytes(in_.le(8))));
      return true;
    default:
      return false;
  }
}

bool Unpickler::container_op(uint8_t op) {
  switch (op) {
    case EMPTY_LIST:
      push(arena_.make(Kind::kList));
      return true;
    case EMPTY_TUPLE:
      push(arena_.make(Kind::kTuple));
      return true;
    case EMPTY_DICT:
      push(make_dict(arena_));
      return true;
    case EMPTY_SET:
      push(arena_.make(Kind::kSet));
      return true;
    case TUPLE:
      push(make_seq(arena_, Kind::kTuple, stack_.pop_mark()));
      return true;
    case TUPLE1:
    case TUPLE2:
    case TUPLE3: {
      std::vector<Value*> items(op - TUPLE1 + 1);
      for (size_t k = items.size(); k-- > 0;) items[k] = stack_.pop();
      push(make_seq(arena_, Kind::kTuple, std::move(items)));
      return true;
    }
    case LIST:
      push(make_seq(arena_, Kind::kList, stack_.pop_mark()));
      return true;
    case FROZENSET:
      push(make_seq(arena_, Kind::kSet, stack_.pop_mark()));
      return true;
    case DICT: {
      std::vector<Value*> kv = stack_.pop_mark();
      Value* d = make_dict(arena_);
      set_items(d, kv);
      push(d);
      return true;
    }
    case APPEND: {
      Value* v = stack_.pop();
      append(stack_.top(), {v}, Kind::kList);
      return true;
    }
    case APPENDS:
    case ADDITEMS: {
      std::vector<Value*> items = stack_.pop_mark();
      append(stack_.top(), std::move(items), op == APPENDS ? Kind::kList : Kind::kSet);
      return true;
    }
    case SETITEM: {
      Value* value = stack_.pop();
      Value* key = stack_.pop();
      set_item(stack_.top(), key, value);
      return true;
    }
    case SETITEMS: {
      std::vector<Value*> kv = stack_.pop_mark();
      set_items(stack_.top(), kv);
      return true;
    }
    default:
      return false;
  }
}

bool Unpickler::object_op(uint8_t op) {
  switch (op) {
    case BINPUT:
      stack_.memo_put(in_.le(1));
      return true;
    case LONG_BINPUT:
      stack_.memo_put(in_.le(4));
      return true;
    case MEMOIZE:
      stack_.memo_put(stack_.memo_size());
      return true;
    case BINGET:
      push(stack_.memo_get(in_.le(1)));
      return true;
    case LONG_BINGET:
      push(stack_.memo_get(in_.le(4)));
      return true;
    case GLOBAL: {
      const std::string module = in_.line();
      const std::string name = in_.line();
      push(make_global(module, name));
      return true;
    }
    case STACK_GLOBAL: {
      Value* name = stack_.pop();
      Value* module = stack_.pop();
      if (module->kind != Kind::kString || name->kind != Kind::kString)
        in_.fail("STACK_GLOBAL needs two strings");
      push(make_global(module->str, name->str));
      return true;
    }
    case REDUCE: {
      Value* args = stack_.pop();
      Value* callable = stack_.pop();
      push(reduce(arena_, in_.op_pos(), callable, args));
      return true;
    }
    case NEWOBJ:
    case NEWOBJ_EX: {
      if (op == NEWOBJ_EX) stack_.pop();  // kwargs
      Value* args = stack_.pop();
      Value* cls = stack_.pop();
      push(newobj(arena_, in_.op_pos(), cls, args));
      return true;
    }
    case BUILD: {
      Value* state = stack_.pop();
      Value* target = stack_.top();
      if (target->kind == Kind::kObject) target->state = state;  // other kinds: ignored
      return true;
    }
    case BINPERSID:
      push(persistent(stack_.pop()));
      return true;
    default:
      return false;
  }
}

bool Unpickler::text_op(uint8_t op) {
  switch (op) {
    case INT: {
      const std::string s = in_.line();
      if (s == "00" || s == "01") {  // protocol 0 booleans
        Value* v = arena_.make(Kind::kBool);
        v->i = s == "01";
        push(v);
      } else {
        push(make_int(arena_, in_.parse_int(s)));
      }
      return true;
    }
    case LONG: {
      std::string s = in_.line();
      if (!s.empty() && s.back() == 'L') s.pop_back();
      push(make_int(arena_, in_.parse_int(s)));
      return true;
    }
    case FLOAT: {
      const std::string s = in_.line();
      char* end = nullptr;
      Value* v = arena_.make(Kind::kFloat);
      v->f = std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size()) in_.fail("bad FLOAT");
      push(v);
      return true;
    }
    case STRING: {  // quoted repr: keep the text between the quotes, escapes left as they are
      const std::string s = in_.line();
      if (s.size() < 2 || s.front() != s.back() || (s[0] != '\'' && s[0] != '"'))
        in_.fail("bad STRING quoting");
      push(make_str(arena_, Kind::kString, s.substr(1, s.size() - 2)));
      return true;
    }
    case UNICODE:
      push(make_str(arena_, Kind::kString, in_.line()));
      return true;
    case PERSID:
      push(persistent(make_str(arena_, Kind::kString, in_.line())));
      return true;
    case GET:
      push(stack_.memo_get(uint64_t(in_.line_int())));
      return true;
    case PUT: {
      const int64_t idx = in_.line_int();
      if (idx < 0) in_.fail("negative memo key");
      stack_.memo_put(uint64_t(idx));
      return true;
    }
    case INST: {
      const std::string module = in_.line();
      const std::string name = in_.line();
      Value* cls = make_global(module, name);
      push(make_object(arena_, cls, stack_.pop_mark()));
      return true;
    }
    case OBJ: {
      std::vector<Value*> items = stack_.pop_mark();
      if (items.empty()) in_.fail("OBJ without a class");
      Value* cls = items.front();
      items.erase(items.begin());
      push(make_object(arena_, cls, std::move(items)));
      return true;
    }
    default:
      return false;
  }
}

void Unpickler::set_item(Value* target, Value* key, Value* value) {
  if (target->kind == Kind::kObject) return;  // e.g. a dict subclass we do not model
  if (target->kind != Kind::kDict) in_.fail(std::string("SETITEM on a ") + kind_name(target->kind));
  DictData& d = *target->dict;
  const std::string k = index_key(key);
  if (!k.empty()) {
    auto [it, fresh] = d.index.emplace(k, d.items.size());
    if (!fresh) {
      d.items[it->second].second = value;
      return;
    }
  }
  d.items.emplace_back(key, value);
}

void Unpickler::set_items(Value* target, const std::vector<Value*>& kv) {
  if (kv.size() % 2) in_.fail("odd number of items for SETITEMS");
  for (size_t k = 0; k < kv.size(); k += 2) set_item(target, kv[k], kv[k + 1]);
}

void Unpickler::append(Value* target, std::vector<Value*> items, Kind want) {
  if (target->kind == Kind::kObject) return;  // e.g. a deque we do not model
  if (target->kind != want)
    in_.fail(std::string("cannot add items to a ") + kind_name(target->kind));
  target->items.insert(target->items.end(), items.begin(), items.end());
}

}  // namespace

Value* unpickle(Source& src, Arena& arena, const PersistentLoad& persistent_load) {
  return Unpickler(src, arena, persistent_load).run();
}

}  // namespace stam::pickle
