#pragma once
// Internal: a small pickle interpreter that turns the pickles written by torch.save into inert
// data, for stam::Checkpoint. It never imports or calls anything: a GLOBAL is just a name, and
// REDUCE / NEWOBJ / BUILD on a name it does not know yield an inert Object. The few callables it
// does understand (OrderedDict, the torch tensor/parameter rebuild functions, _codecs.encode,
// set/frozenset) are re-implemented here as plain data constructors.
//
// Protocols 0 to 5 are accepted (torch.save writes 2). Every length is checked against the bytes
// left before anything is allocated, and the number of values one Arena may hold is capped, so a
// hostile pickle yields a pickle::Error rather than a crash, a hang or a giant allocation.
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace stam::pickle {

// Thrown for any malformed, truncated or unsupported pickle; the message says what and where.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,     // fits in int64
  kBigInt,  // wider integer, kept as little-endian two's complement bytes in `str`
  kFloat,
  kString,  // UTF-8 in `str`
  kBytes,   // raw bytes in `str`
  kList,
  kTuple,
  kSet,
  kDict,
  kGlobal,   // "module name" in `str`, never resolved
  kObject,   // inert result of calling / instantiating a global: `cls`, `items` = args
  kStorage,  // a persistent-id storage reference: `storage`
  kTensor,   // a rebuilt tensor description: `tensor`
};

// A storage named by a persistent id: ('storage', type, key, location, numel[, view_metadata]).
struct StorageRef {
  std::string key;        // storage key: zip record "data/<key>", legacy data-section key
  std::string type_name;  // e.g. "FloatStorage", for messages
  c10::ScalarType dtype = c10::ScalarType::Undefined;  // Undefined: a type we cannot read
  int64_t numel = 0;        // elements of the (root) storage, as declared
  int64_t view_offset = 0;  // legacy storage views: element offset into the root storage
  int64_t view_numel = -1;  // legacy storage views: elements of the view; -1 = whole storage
};

// What torch._utils._rebuild_tensor_v2 and friends would build, as plain numbers.
struct TensorRef {
  StorageRef storage;
  c10::ScalarType dtype = c10::ScalarType::Undefined;  // element type of the tensor
  int64_t offset = 0;                                  // in tensor elements
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

struct Value;

// Dict contents, kept in insertion order (a state dict's order is the file's order).
struct DictData {
  std::vector<std::pair<Value*, Value*>> items;
  // Position of each str/int key in `items`, so that re-setting a key replaces it in O(1).
  std::unordered_map<std::string, size_t> index;
};

struct Value {
  explicit Value(Kind k) : kind(k) {}
  Kind kind;
  int64_t i = 0;  // kBool (0/1), kInt
  double f = 0;   // kFloat
  std::string str;
  std::vector<Value*> items;       // kList, kTuple, kSet, kObject (its arguments)
  Value* cls = nullptr;            // kObject: the global it came from
  Value* state = nullptr;          // kObject: the BUILD state, if any
  std::unique_ptr<DictData> dict;  // kDict
  std::unique_ptr<StorageRef> storage;
  std::unique_ptr<TensorRef> tensor;

  bool is_global(const char* module_and_name) const {
    return kind == Kind::kGlobal && str == module_and_name;
  }
  // Looks up a string key of a kDict; nullptr when absent or not a dict.
  Value* get(const std::string& key) const;
};

// Owns every Value made while reading one file. Values point at each other with raw pointers,
// so cycles (possible through the memo) cost nothing and teardown is never recursive.
class Arena {
 public:
  // At most 1M values per file: ~100 bytes each, while the STAM state dict with an Adam state
  // beside it needs about 10k.
  static constexpr size_t kMaxValues = 1u << 20;
  Value* make(Kind kind);
  size_t size() const { return values_.size(); }

 private:
  std::deque<Value> values_;
};

// Where the pickle bytes come from. read() throws Error when fewer than n bytes remain.
class Source {
 public:
  virtual ~Source() = default;
  virtual void read(void* dst, size_t n) = 0;
  virtual uint64_t remaining() const = 0;
  virtual uint64_t position() const = 0;
};

class MemorySource final : public Source {
 public:
  MemorySource(const void* data, size_t size)
      : data_(static_cast<const uint8_t*>(data)), size_(size) {}
  void read(void* dst, size_t n) override;
  uint64_t remaining() const override { return size_ - pos_; }
  uint64_t position() const override { return pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Turns a persistent id (BINPERSID / PERSID) into a value. The default makes a kStorage value
// from torch's ('storage', type, key, location, numel[, view]) tuples and rejects anything else.
using PersistentLoad = std::function<Value*(Arena&, Value* pid)>;
Value* torch_persistent_load(Arena& arena, Value* pid);

// Maps a torch storage class name ("FloatStorage", "UntypedStorage", ...) to its element type;
// Undefined when unknown.
c10::ScalarType storage_dtype(const std::string& type_name);

// Reads one pickle (through its STOP opcode) from `src` and returns its value, owned by `arena`.
// Leaves `src` just past the STOP, so consecutive pickles can be read one after another.
Value* unpickle(Source& src, Arena& arena,
                const PersistentLoad& persistent_load = torch_persistent_load);

}  // namespace stam::pickle
