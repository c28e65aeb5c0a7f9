// Torch's rebuild functions as data: tensors and storages become TensorRef / StorageRef.
#include "torch_calls.hpp"

#include <memory>
#include <unordered_map>

#include "values.hpp"

namespace stam::pickle {
namespace detail {
namespace {

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

// The arguments of one call, with the position of its opcode for messages.
struct Call {
  Arena& arena;
  uint64_t op_pos;
  [[noreturn]] void fail(const std::string& what) const { fail_at(op_pos, what); }

  std::vector<int64_t> int_tuple(Value* v, const char* what) const;
  Value* rebuild_tensor(const std::vector<Value*>& a, size_t n_fixed, Value* dtype) const;
};

std::vector<int64_t> Call::int_tuple(Value* v, const char* what) const {
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
Value* Call::rebuild_tensor(const std::vector<Value*>& a, size_t n_fixed, Value* dtype) const {
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
  Value* v = arena.make(Kind::kTensor);
  v->tensor = std::move(t);
  return v;
}

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

Value* reduce(Arena& arena, uint64_t op_pos, Value* callable, Value* args) {
  const Call call{arena, op_pos};
  // _rebuild_from_type(_v2)(func, type, args, state) wraps a tensor subclass: rebuild the plain
  // tensor inside. Unwrapped in a loop with a small bound, so nesting cannot recurse deeply.
  for (int hops = 0; callable->is_global("torch._tensor _rebuild_from_type_v2") ||
                     callable->is_global("torch._tensor _rebuild_from_type");
       ++hops) {
    if (hops == 8) call.fail("_rebuild_from_type nested too deeply");
    if (args->kind != Kind::kTuple || args->items.size() < 3)
      call.fail("too few arguments to _rebuild_from_type");
    callable = args->items[0];
    args = args->items[2];
  }
  if (args->kind != Kind::kTuple) call.fail("REDUCE arguments are not a tuple");
  const std::vector<Value*>& a = args->items;
  if (callable->kind != Kind::kGlobal) return make_object(arena, callable, a);
  const std::string& f = callable->str;
  if (f == "collections OrderedDict") return make_dict(arena);  // items follow via SETITEMS
  if (f == "torch._utils _rebuild_tensor") return call.rebuild_tensor(a, 4, nullptr);
  if (f == "torch._utils _rebuild_tensor_v2") return call.rebuild_tensor(a, 6, nullptr);
  if (f == "torch._utils _rebuild_tensor_v3") {
    if (a.size() < 7) call.fail("too few arguments to _rebuild_tensor_v3");
    return call.rebuild_tensor(a, 7, a[6]);
  }
  if (f == "torch._utils _rebuild_parameter" || f == "torch._utils _rebuild_parameter_with_state") {
    if (a.empty()) call.fail("_rebuild_parameter without data");
    return a[0];  // a Parameter is its data tensor plus flags we do not need
  }
  if ((f == "_codecs encode") && a.size() == 2 && a[0]->kind == Kind::kString) {
    return make_str(arena, Kind::kBytes, latin1(a[0]->str));  // how protocol 2 spells bytes
  }
  if ((f == "builtins set" || f == "builtins frozenset" || f == "__builtin__ set") &&
      a.size() == 1 && (a[0]->kind == Kind::kList || a[0]->kind == Kind::kTuple)) {
    return make_seq(arena, Kind::kSet, a[0]->items);
  }
  return make_object(arena, callable, a);  // anything else: an inert record of the call, never run
}

Value* newobj(Arena& arena, uint64_t op_pos, Value* cls, Value* args) {
  if (args->kind != Kind::kTuple) fail_at(op_pos, "NEWOBJ arguments are not a tuple");
  if (cls->is_global("collections OrderedDict")) return make_dict(arena);
  return make_object(arena, cls, args->items);
}

}  // namespace detail

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

Value* torch_persistent_load(Arena& arena, Value* pid) {
  using detail::non_negative_int;
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
  if (a.size() == 6) detail::read_view(*s, a[5]);
  Value* v = arena.make(Kind::kStorage);
  v->storage = std::move(s);
  return v;
}

}  // namespace stam::pickle
