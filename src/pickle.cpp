// An inert pickle interpreter: see include/stam/pickle.hpp for what it does and does not do.
#include "stam/pickle.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace stam::pickle {
namespace {

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

// Text opcodes (protocol 0) end with a newline; no legitimate line is anywhere near this long.
constexpr size_t kMaxLine = 1 << 16;

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

// Key under which DictData::index remembers a str or int key; empty for other key kinds,
// which are appended without de-duplication (they never matter to a checkpoint reader).
std::string index_key(const Value* key) {
  if (key->kind == Kind::kString) return "s" + key->str;
  if (is_int(key)) return "i" + std::to_string(key->i);
  return {};
}

// The unsigned little-endian value of n <= 8 bytes.
uint64_t little_endian(const uint8_t* b, size_t n) {
  uint64_t u = 0;
  for (size_t k = 0; k < n; ++k) u |= uint64_t(b[k]) << (8 * k);
  return u;
}

// Decodes the little-endian two's complement integer of LONG1 / LONG4.
Value* make_long(Arena& arena, std::string bytes) {
  if (bytes.size() <= 8) {
    uint64_t u = little_endian(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    if (!bytes.empty() && bytes.size() < 8 && (uint8_t(bytes.back()) & 0x80))
      u |= ~uint64_t(0) << (8 * bytes.size());  // sign-extend
    Value* v = arena.make(Kind::kInt);
    std::memcpy(&v->i, &u, sizeof u);
    return v;
  }
  Value* v = arena.make(Kind::kBigInt);
  v->str = std::move(bytes);
  return v;
}

// Protocol 2 pickles bytes as _codecs.encode(text, 'latin1'): map each code point (< 256) of
// the UTF-8 text back to one byte. Text that is not valid latin1 is kept as it is.
std::string latin1(const std::string& utf8) {
  std::string out;
  for (size_t k = 0; k < utf8.size(); ++k) {
    const uint8_t c = uint8_t(utf8[k]);
    if (c < 0x80) {
      out += char(c);
    } else if ((c & 0xfe) == 0xc2 && k + 1 < utf8.size()) {  // U+0080..U+00FF
      out += char(((c & 0x03) << 6) | (uint8_t(utf8[++k]) & 0x3f));
    } else {
      return utf8;
    }
  }
  return out;
}

class Unpickler {
 public:
  Unpickler(Source& src, Arena& arena, const PersistentLoad& persistent_load)
      : src_(src), arena_(arena), persistent_load_(persistent_load) {}

  Value* run() {
    for (;;) {
      op_pos_ = src_.position();
      const uint8_t op = u8();
      if (op == STOP) return finish();
      step(op);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("pickle: " + what + " (opcode at byte " + std::to_string(op_pos_) + ")");
  }

  // ---- raw input -------------------------------------------------------------------------
  void need(uint64_t n) const {
    if (n > src_.remaining()) fail("truncated: needs " + std::to_string(n) + " more bytes");
  }
  uint64_t le(size_t n) {
    uint8_t b[8];
    need(n);
    src_.read(b, n);
    return little_endian(b, n);
  }
  uint8_t u8() { return uint8_t(le(1)); }
  std::string bytes(uint64_t n) {
    need(n);  // before allocating: a declared length can never exceed what is left
    std::string s(size_t(n), '\0');
    if (n) src_.read(&s[0], size_t(n));
    return s;
  }
  std::string line() {
    std::string s;
    for (;;) {
      const char c = char(u8());
      if (c == '\n') return s;
      if (s.size() >= kMaxLine) fail("text line too long");
      s += c;
    }
  }
  int64_t line_int() {
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

  // ---- stack and memo ----------------------------------------------------------------------
  void push(Value* v) { stack_.push_back(v); }
  Value* pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  // Values above the innermost MARK belong to it; ops other than mark-consumers may not dig
  // below it, as in CPython.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return items;
  }
  void memo_put(uint64_t idx) {
    Value* v = top();
    memo_[idx] = v;
  }
  Value* memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail("memo key " + std::to_string(idx) + " was never stored");
    return it->second;
  }

  // ---- value builders ----------------------------------------------------------------------
  Value* make(Kind kind) { return arena_.make(kind); }
  Value* make_int(int64_t i) {
    Value* v = make(Kind::kInt);
    v->i = i;
    return v;
  }
  Value* make_str(Kind kind, std::string s) {
    Value* v = make(kind);
    v->str = std::move(s);
    return v;
  }
  Value* make_seq(Kind kind, std::vector<Value*> items) {
    Value* v = make(kind);
    v->items = std::move(items);
    return v;
  }
  Value* make_dict() {
    Value* v = make(Kind::kDict);
    v->dict = std::make_unique<DictData>();
    return v;
  }
  Value* make_global(const std::string& module, const std::string& name) {
    if (module.empty() || name.empty()) fail("empty global name");
    return make_str(Kind::kGlobal, module + " " + name);
  }
  Value* make_object(Value* cls, std::vector<Value*> args) {
    Value* v = make_seq(Kind::kObject, std::move(args));
    v->cls = cls;
    return v;
  }

  // ---- container updates -------------------------------------------------------------------
  void set_item(Value* target, Value* key, Value* value) {
    if (target->kind == Kind::kObject) return;  // e.g. a dict subclass we do not model
    if (target->kind != Kind::kDict) fail(std::string("SETITEM on a ") + kind_name(target->kind));
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
  void append(Value* target, std::vector<Value*> items, Kind want) {
    if (target->kind == Kind::kObject) return;  // e.g. a deque we do not model
    if (target->kind != want) fail(std::string("cannot add items to a ") + kind_name(target->kind));
    target->items.insert(target->items.end(), items.begin(), items.end());
  }

  // ---- the interpreter ---------------------------------------------------------------------
  void step(uint8_t op) {
    switch (op) {
      case PROTO:
        if (u8() > 5) fail("unsupported pickle protocol");
        return;
      case FRAME:
        le(8);  // framing is only a read-ahead hint
        return;
      case MARK:
        marks_.push_back(stack_.size());
        return;
      case POP:
        if (!marks_.empty() && stack_.size() == marks_.back()) {
          marks_.pop_back();  // CPython: POP on an empty mark frame discards the mark
        } else {
          pop();
        }
        return;
      case POP_MARK:
        pop_mark();
        return;
      case DUP:
        push(top());
        return;
      case NONE:
        return push(make(Kind::kNone));
      case NEWTRUE:
      case NEWFALSE: {
        Value* v = make(Kind::kBool);
        v->i = op == NEWTRUE;
        return push(v);
      }
      case BININT:
        return push(make_int(int32_t(uint32_t(le(4)))));
      case BININT1:
        return push(make_int(int64_t(le(1))));
      case BININT2:
        return push(make_int(int64_t(le(2))));
      case LONG1:
        return push(make_long(arena_, bytes(le(1))));
      case LONG4: {
        const int32_t n = int32_t(uint32_t(le(4)));
        if (n < 0) fail("negative LONG4 length");
        return push(make_long(arena_, bytes(uint64_t(n))));
      }
      case BINFLOAT: {
        uint8_t b[8];
        need(8);
        src_.read(b, 8);
        uint64_t u = 0;
        for (uint8_t byte : b) u = (u << 8) | byte;  // big-endian on the wire
        Value* v = make(Kind::kFloat);
        std::memcpy(&v->f, &u, sizeof u);
        return push(v);
      }
      case SHORT_BINUNICODE:
        return push(make_str(Kind::kString, bytes(le(1))));
      case BINUNICODE:
        return push(make_str(Kind::kString, bytes(le(4))));
      case BINUNICODE8:
        return push(make_str(Kind::kString, bytes(le(8))));
      case SHORT_BINSTRING:  // Python 2 str: read as text, as torch.load(encoding='utf-8') does
        return push(make_str(Kind::kString, bytes(le(1))));
      case BINSTRING: {
        const int32_t n = int32_t(uint32_t(le(4)));
        if (n < 0) fail("negative BINSTRING length");
        return push(make_str(Kind::kString, bytes(uint64_t(n))));
      }
      case SHORT_BINBYTES:
        return push(make_str(Kind::kBytes, bytes(le(1))));
      case BINBYTES:
        return push(make_str(Kind::kBytes, bytes(le(4))));
      case BINBYTES8:
      case BYTEARRAY8:
        return push(make_str(Kind::kBytes, bytes(le(8))));
      case NEXT_BUFFER:
        fail("out-of-band buffers are not supported");
      case READONLY_BUFFER:
        top();
        return;
      case EMPTY_LIST:
        return push(make(Kind::kList));
      case EMPTY_TUPLE:
        return push(make(Kind::kTuple));
      case EMPTY_DICT:
        return push(make_dict());
      case EMPTY_SET:
        return push(make(Kind::kSet));
      case TUPLE:
        return push(make_seq(Kind::kTuple, pop_mark()));
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        std::vector<Value*> items(op - TUPLE1 + 1);
        for (size_t k = items.size(); k-- > 0;) items[k] = pop();
        return push(make_seq(Kind::kTuple, std::move(items)));
      }
      case LIST:
        return push(make_seq(Kind::kList, pop_mark()));
      case FROZENSET:
        return push(make_seq(Kind::kSet, pop_mark()));
      case DICT: {
        std::vector<Value*> kv = pop_mark();
        Value* d = make_dict();
        set_items(d, kv);
        return push(d);
      }
      case APPEND: {
        Value* v = pop();
        append(top(), {v}, Kind::kList);
        return;
      }
      case APPENDS: {
        std::vector<Value*> items = pop_mark();
        append(top(), std::move(items), Kind::kList);
        return;
      }
      case ADDITEMS: {
        std::vector<Value*> items = pop_mark();
        append(top(), std::move(items), Kind::kSet);
        return;
      }
      case SETITEM: {
        Value* value = pop();
        Value* key = pop();
        set_item(top(), key, value);
        return;
      }
      case SETITEMS: {
        std::vector<Value*> kv = pop_mark();
        set_items(top(), kv);
        return;
      }
      case BINPUT:
        return memo_put(le(1));
      case LONG_BINPUT:
        return memo_put(le(4));
      case MEMOIZE:
        return memo_put(memo_.size());
      case BINGET:
        return push(memo_get(le(1)));
      case LONG_BINGET:
        return push(memo_get(le(4)));
      case GLOBAL: {
        const std::string module = line();
        const std::string name = line();
        return push(make_global(module, name));
      }
      case STACK_GLOBAL: {
        Value* name = pop();
        Value* module = pop();
        if (module->kind != Kind::kString || name->kind != Kind::kString)
          fail("STACK_GLOBAL needs two strings");
        return push(make_global(module->str, name->str));
      }
      case REDUCE: {
        Value* args = pop();
        Value* callable = pop();
        return push(reduce(callable, args));
      }
      case NEWOBJ: {
        Value* args = pop();
        Value* cls = pop();
        return push(newobj(cls, args));
      }
      case NEWOBJ_EX: {
        pop();  // kwargs
        Value* args = pop();
        Value* cls = pop();
        return push(newobj(cls, args));
      }
      case BUILD: {
        Value* state = pop();
        Value* target = top();
        if (target->kind == Kind::kObject) target->state = state;  // other kinds: ignored
        return;
      }
      case BINPERSID:
        return push(persistent(pop()));
      case EXT1:
      case EXT2:
      case EXT4:
        fail("extension registry codes are not supported");
      default:
        return text_op(op);
    }
  }

  // Protocol 0 opcodes: rare in checkpoints but cheap to support.
  void text_op(uint8_t op) {
    switch (op) {
      case INT: {
        const std::string s = line();
        if (s == "00" || s == "01") {  // protocol 0 booleans
          Value* v = make(Kind::kBool);
          v->i = s == "01";
          return push(v);
        }
        return push(make_int(parse_int(s)));
      }
      case LONG: {
        std::string s = line();
        if (!s.empty() && s.back() == 'L') s.pop_back();
        return push(make_int(parse_int(s)));
      }
      case FLOAT: {
        const std::string s = line();
        char* end = nullptr;
        Value* v = make(Kind::kFloat);
        v->f = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size()) fail("bad FLOAT");
        return push(v);
      }
      case STRING: {  // quoted repr: keep the text between the quotes, escapes left as they are
        std::string s = line();
        if (s.size() < 2 || s.front() != s.back() || (s[0] != '\'' && s[0] != '"'))
          fail("bad STRING quoting");
        return push(make_str(Kind::kString, s.substr(1, s.size() - 2)));
      }
      case UNICODE:
        return push(make_str(Kind::kString, line()));
      case PERSID:
        return push(persistent(make_str(Kind::kString, line())));
      case GET:
        return push(memo_get(uint64_t(line_int())));
      case PUT: {
        const int64_t idx = line_int();
        if (idx < 0) fail("negative memo key");
        return memo_put(uint64_t(idx));
      }
      case INST: {
        const std::string module = line();
        const std::string name = line();
        Value* cls = make_global(module, name);
        return push(make_object(cls, pop_mark()));
      }
      case OBJ: {
        std::vector<Value*> items = pop_mark();
        if (items.empty()) fail("OBJ without a class");
        Value* cls = items.front();
        items.erase(items.begin());
        return push(make_object(cls, std::move(items)));
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unknown opcode ") + hex);
      }
    }
  }

  int64_t parse_int(const std::string& s) {
    if (s.empty() || s.size() > 20) fail("bad decimal integer");
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno || end != s.c_str() + s.size()) fail("bad decimal integer");
    return v;
  }

  void set_items(Value* target, const std::vector<Value*>& kv) {
    if (kv.size() % 2) fail("odd number of items for SETITEMS");
    for (size_t k = 0; k < kv.size(); k += 2) set_item(target, kv[k], kv[k + 1]);
  }

  Value* persistent(Value* pid) {
    if (!persistent_load_) fail("persistent id without a loader");
    Value* v = persistent_load_(arena_, pid);
    if (!v) fail("unknown persistent id");
    return v;
  }

  Value* finish() {
    if (!marks_.empty()) fail("STOP with an open MARK");
    if (stack_.size() != 1)
      fail("STOP with " + std::to_string(stack_.size()) + " values on the stack");
    return stack_.back();
  }

  // ---- calls, re-implemented as data for the few callables torch.save emits ----------------
  Value* reduce(Value* callable, Value* args);
  Value* newobj(Value* cls, Value* args);
  Value* rebuild_tensor(const std::vector<Value*>& a, size_t n_fixed, Value* dtype);
  std::vector<int64_t> int_tuple(Value* v, const char* what);

  Source& src_;
  Arena& arena_;
  const PersistentLoad& persistent_load_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  uint64_t op_pos_ = 0;
};

// dtype globals as pickled by torch: torch.float32 pickles as GLOBAL 'torch float32'.
c10::ScalarType dtype_from_global(const Value* v) {
  static const std::unordered_map<std::string, c10::ScalarType> kNames = {
      {"float32", c10::kFloat}, {"float", c10::kFloat},       {"float16", c10::kHalf},
      {"half", c10::kHalf},     {"bfloat16", c10::kBFloat16}, {"float64", c10::kDouble},
      {"double", c10::kDouble}, {"int64", c10::kLong},        {"long", c10::kLong},
      {"int32", c10::kInt},     {"int", c10::kInt},           {"int16", c10::kShort},
      {"short", c10::kShort},   {"int8", c10::kChar},         {"uint8", c10::kByte},
      {"bool", c10::kBool},
  };
  if (v->kind != Kind::kGlobal || v->str.rfind("torch ", 0) != 0) return c10::ScalarType::Undefined;
  auto it = kNames.find(v->str.substr(6));
  return it == kNames.end() ? c10::ScalarType::Undefined : it->second;
}

std::vector<int64_t> Unpickler::int_tuple(Value* v, const char* what) {
  // torch.Size may also arrive as an inert torch.Size(tuple) object.
  if (v->kind == Kind::kObject && v->cls->is_global("torch Size") && v->items.size() == 1)
    v = v->items[0];
  if (v->kind != Kind::kTuple && v->kind != Kind::kList)
    fail(std::string("tensor ") + what + " is not a tuple");
  if (v->items.size() > 64) fail(std::string("tensor ") + what + " has too many dimensions");
  std::vector<int64_t> out;
  for (Value* x : v->items) {
    if (!is_int(x)) fail(std::string("tensor ") + what + " holds a non-integer");
    out.push_back(x->i);
  }
  return out;
}

// _rebuild_tensor(storage, offset, size, stride) and its v2/v3 successors; `dtype`, when given
// (v3), overrides the storage's element type.
Value* Unpickler::rebuild_tensor(const std::vector<Value*>& a, size_t n_fixed, Value* dtype) {
  if (a.size() < n_fixed) fail("too few arguments to rebuild a tensor");
  if (a[0]->kind != Kind::kStorage) fail("tensor rebuilt from something that is not a storage");
  if (!is_int(a[1])) fail("tensor storage offset is not an integer");
  auto t = std::make_unique<TensorRef>();
  t->storage = *a[0]->storage;
  t->dtype = t->storage.dtype;
  if (dtype) {
    t->dtype = dtype_from_global(dtype);
    if (t->dtype == c10::ScalarType::Undefined) fail("unknown tensor dtype " + dtype->str);
  }
  t->offset = a[1]->i;
  t->sizes = int_tuple(a[2], "size");
  t->strides = int_tuple(a[3], "stride");
  if (t->sizes.size() != t->strides.size()) fail("tensor size and stride differ in length");
  Value* v = make(Kind::kTensor);
  v->tensor = std::move(t);
  return v;
}

Value* Unpickler::reduce(Value* callable, Value* args) {
  // _rebuild_from_type(_v2)(func, type, args, state) wraps a tensor subclass: rebuild the plain
  // tensor inside. Unwrapped in a loop with a small bound, so nesting cannot recurse deeply.
  for (int hops = 0; callable->is_global("torch._tensor _rebuild_from_type_v2") ||
                     callable->is_global("torch._tensor _rebuild_from_type");
       ++hops) {
    if (hops == 8) fail("_rebuild_from_type nested too deeply");
    if (args->kind != Kind::kTuple || args->items.size() < 3)
      fail("too few arguments to _rebuild_from_type");
    callable = args->items[0];
    args = args->items[2];
  }
  if (args->kind != Kind::kTuple) fail("REDUCE arguments are not a tuple");
  const std::vector<Value*>& a = args->items;
  if (callable->kind != Kind::kGlobal) return make_object(callable, a);
  const std::string& f = callable->str;
  if (f == "collections OrderedDict") return make_dict();  // items follow via SETITEMS
  if (f == "torch._utils _rebuild_tensor") return rebuild_tensor(a, 4, nullptr);
  if (f == "torch._utils _rebuild_tensor_v2") return rebuild_tensor(a, 6, nullptr);
  if (f == "torch._utils _rebuild_tensor_v3") {
    if (a.size() < 7) fail("too few arguments to _rebuild_tensor_v3");
    return rebuild_tensor(a, 7, a[6]);
  }
  if (f == "torch._utils _rebuild_parameter" || f == "torch._utils _rebuild_parameter_with_state") {
    if (a.empty()) fail("_rebuild_parameter without data");
    return a[0];  // a Parameter is its data tensor plus flags we do not need
  }
  if ((f == "_codecs encode") && a.size() == 2 && a[0]->kind == Kind::kString) {
    return make_str(Kind::kBytes, latin1(a[0]->str));  // how protocol 2 spells bytes objects
  }
  if ((f == "builtins set" || f == "builtins frozenset" || f == "__builtin__ set") &&
      a.size() == 1 && (a[0]->kind == Kind::kList || a[0]->kind == Kind::kTuple)) {
    return make_seq(Kind::kSet, a[0]->items);
  }
  return make_object(callable, a);  // anything else: an inert record of the call, never run
}

Value* Unpickler::newobj(Value* cls, Value* args) {
  if (args->kind != Kind::kTuple) fail("NEWOBJ arguments are not a tuple");
  if (cls->is_global("collections OrderedDict")) return make_dict();
  return make_object(cls, args->items);
}

}  // namespace

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

c10::ScalarType storage_dtype(const std::string& type_name) {
  static const std::unordered_map<std::string, c10::ScalarType> kTypes = {
      {"FloatStorage", c10::kFloat},
      {"HalfStorage", c10::kHalf},
      {"BFloat16Storage", c10::kBFloat16},
      {"DoubleStorage", c10::kDouble},
      {"LongStorage", c10::kLong},
      {"IntStorage", c10::kInt},
      {"ShortStorage", c10::kShort},
      {"CharStorage", c10::kChar},
      {"ByteStorage", c10::kByte},
      {"BoolStorage", c10::kBool},
      {"ComplexFloatStorage", c10::kComplexFloat},
      {"ComplexDoubleStorage", c10::kComplexDouble},
      {"UntypedStorage", c10::kByte},  // raw bytes; the tensor names its own dtype
  };
  auto it = kTypes.find(type_name);
  return it == kTypes.end() ? c10::ScalarType::Undefined : it->second;
}

namespace {

bool non_negative_int(const Value* v) {
  return is_int(v) && v->i >= 0;
}

// Fills the legacy view fields from view_metadata = (view_key, offset, view_size).
void read_view(StorageRef& s, const Value* view) {
  if (view->kind == Kind::kNone) return;
  if (view->kind != Kind::kTuple || view->items.size() != 3 || !non_negative_int(view->items[1]) ||
      !non_negative_int(view->items[2]))
    throw Error("pickle: malformed storage view metadata");
  s.view_offset = view->items[1]->i;
  s.view_numel = view->items[2]->i;
}

}  // namespace

Value* torch_persistent_load(Arena& arena, Value* pid) {
  // ('storage', storage_type, key, location, numel[, view_metadata])
  if (pid->kind != Kind::kTuple || pid->items.size() < 5 || pid->items.size() > 6)
    throw Error("pickle: unsupported persistent id");
  const std::vector<Value*>& a = pid->items;
  if (a[0]->kind != Kind::kString || a[0]->str != "storage")
    throw Error("pickle: unsupported persistent id");
  if (a[1]->kind != Kind::kGlobal) throw Error("pickle: storage type is not a class name");
  if (a[2]->kind != Kind::kString || a[2]->str.empty() || a[2]->str.size() > 256)
    throw Error("pickle: bad storage key");
  if (!non_negative_int(a[4])) throw Error("pickle: bad storage size");
  auto s = std::make_unique<StorageRef>();
  const std::string& type = a[1]->str;
  s->type_name = type.substr(type.find(' ') + 1);
  // Storage classes live in torch (FloatStorage...), torch.cuda (old CUDA files) and
  // torch.storage (UntypedStorage); the location ('cpu', 'cuda:0') does not matter here.
  const bool torch_module = type.rfind("torch ", 0) == 0 || type.rfind("torch.cuda ", 0) == 0 ||
                            type.rfind("torch.storage ", 0) == 0;
  s->dtype = torch_module ? storage_dtype(s->type_name) : c10::ScalarType::Undefined;
  s->key = a[2]->str;
  s->numel = a[4]->i;
  if (a.size() == 6) read_view(*s, a[5]);
  Value* v = arena.make(Kind::kStorage);
  v->storage = std::move(s);
  return v;
}

Value* unpickle(Source& src, Arena& arena, const PersistentLoad& persistent_load) {
  return Unpickler(src, arena, persistent_load).run();
}

}  // namespace stam::pickle
