// stam::Checkpoint: finds the state dict in a torch.save file and reads its tensors lazily.
//
// Zip files (PyTorch >= 1.6) are read through LibTorch's own PyTorchStreamReader: data.pkl is
// unpickled at open. torch.save stores tensor records uncompressed and 64-byte aligned, so the
// file is mapped into memory, when a tensor of such a record is first loaded, and view() gives
// those tensors as views of their bytes: no read, no copy. A compressed record (or a file that
// cannot be mapped) is read when one of its tensors is loaded. Legacy
// files are a run of pickles followed by the raw storages; open() reads the pickles and walks the
// storage section with seeks only, remembering where each storage's bytes start.
#include "checkpoint/checkpoint.hpp"

#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "checkpoint/pickle/pickle.hpp"
#include "checkpoint/zip_directory.hpp"
#include "stam/error.hpp"

// Storage bytes are little-endian on disk and are used in place.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "big-endian hosts are not supported");

namespace stam {
namespace {

namespace fs = std::filesystem;
using pickle::Kind;
using pickle::StorageRef;
using pickle::TensorRef;
using pickle::Value;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ModelError("checkpoint " + path + ": " + what);
}

// Sequential, buffered reads of a file whose size is known, for the legacy format's pickles;
// skip() moves past storage bytes without reading them.
class FileSource final : public pickle::Source {
 public:
  FileSource(const std::string& path, uint64_t size) : in_(path, std::ios::binary), size_(size) {
    if (!in_) throw pickle::Error("cannot open the file for reading");
  }
  void read(void* dst, size_t n) override {
    if (n > remaining()) throw pickle::Error("unexpected end of file");
    auto* out = static_cast<char*>(dst);
    while (n > 0) {
      if (pos_ < buf_start_ || pos_ >= buf_start_ + buf_.size()) fill();
      const size_t at = size_t(pos_ - buf_start_);
      const size_t k = std::min(n, buf_.size() - at);
      std::memcpy(out, buf_.data() + at, k);
      out += k, pos_ += k, n -= k;
    }
  }
  uint64_t remaining() const override { return size_ - pos_; }
  uint64_t position() const override { return pos_; }
  void skip(uint64_t n) {
    if (n > remaining()) throw pickle::Error("unexpected end of file");
    pos_ += n;
  }

 private:
  void fill() {
    buf_.resize(size_t(std::min<uint64_t>(kChunk, remaining())));
    in_.clear();
    in_.seekg(std::streamoff(pos_));
    in_.read(buf_.data(), std::streamsize(buf_.size()));
    if (size_t(in_.gcount()) != buf_.size()) throw pickle::Error("read error");
    buf_start_ = pos_;
  }
  static constexpr uint64_t kChunk = 1 << 16;
  std::ifstream in_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t buf_start_ = 0;
  std::vector<char> buf_;
};

// a * b, or throws on int64 overflow; hostile sizes must not wrap around a bounds check.
int64_t mul(int64_t a, int64_t b, const std::string& path) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail(path, "tensor size overflows");
  return r;
}
int64_t add(int64_t a, int64_t b, const std::string& path) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail(path, "tensor size overflows");
  return r;
}

// Legacy file: where one storage's bytes sit.
struct StorageSpan {
  uint64_t offset = 0;
  uint64_t nbytes = 0;
};

// A state-dict tensor and the byte range of its storage record that it reads.
struct Slot {
  TensorRef ref;
  int64_t numel = 0;
  int64_t begin = 0;  // first byte used, from the start of the storage record
  int64_t end = 0;    // one past the last byte used
};

// A whole file mapped into memory; tensors that point into it share ownership of it. Private and
// writable: a write copies the page it touches, so it never reaches the file (and nothing here
// writes, which is what makes release() safe).
class MappedFile {
 public:
  // data() is null when the file cannot be mapped; the caller then reads instead.
  MappedFile(const std::string& path, uint64_t size) : size_(size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    void* p = ::mmap(nullptr, size_t(size), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return;
    data_ = static_cast<char*>(p);
  }
  ~MappedFile() {
    if (data_) ::munmap(data_, size_t(size_));
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  char* data() const { return data_; }

  // Reads in the pages of [begin, end), so that reading shows in the load, not in the first
  // forward. MAP_POPULATE would copy every page of a writable private mapping; this only reads
  // them (Linux >= 5.14; older kernels get read-ahead instead).
  void populate(uint64_t begin, uint64_t end) const {
    const uint64_t first = begin / page() * page(), last = std::min(size_, round_up(end));
    if (first >= last) return;
    constexpr int kPopulateRead = 22;  // MADV_POPULATE_READ
    if (::madvise(data_ + first, last - first, kPopulateRead) != 0)
      ::madvise(data_ + first, last - first, MADV_WILLNEED);
  }
  // Drops the pages wholly inside [begin, end) from memory. Unwritten pages of a private file
  // mapping are read from the file again if touched, so this only ever costs a re-read.
  void release(uint64_t begin, uint64_t end) const {
    const uint64_t first = round_up(begin), last = end / page() * page();
    if (first < last) ::madvise(data_ + first, last - first, MADV_DONTNEED);
  }

 private:
  static uint64_t page() {
    static const uint64_t size = uint64_t(::sysconf(_SC_PAGESIZE));
    return size;
  }
  static uint64_t round_up(uint64_t n) { return (n + page() - 1) / page() * page(); }

  char* data_ = nullptr;
  uint64_t size_;
};

bool has_tensor(const Value* dict) {
  if (!dict || dict->kind != Kind::kDict) return false;
  for (const auto& kv : dict->dict->items)
    if (kv.first->kind == Kind::kString && kv.second->kind == Kind::kTensor) return true;
  return false;
}

}  // namespace

struct Checkpoint::Impl {
  std::string path;
  std::string format;
  std::string location;
  std::vector<TensorEntry> entries;
  std::vector<Slot> slots;  // parallel to entries
  std::unordered_map<std::string, size_t> index;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;  // zip format only
  std::unordered_map<std::string, uint64_t> stored;    // zip: uncompressed record -> its size
  mutable std::once_flag map_once;                     // zip: the file is mapped on first use
  mutable std::shared_ptr<const MappedFile> map;       // null until then, or when unmappable
  std::unordered_map<std::string, StorageSpan> spans;  // legacy format only
  uint64_t file_size = 0;

  void open_zip();
  void open_legacy();
  void take_state_dict(const Value* top);
  Slot check_tensor(const std::string& key, const TensorRef& ref) const;
  torch::Tensor read(const Slot& slot, bool may_view) const;
  torch::Tensor read_zip(const Slot& slot, bool may_view) const;
  const MappedFile* mapping() const;
  // Where the slot's storage record starts in the mapped file; nothing when it is not mapped.
  std::optional<uint64_t> mapped_record(const Slot& slot) const;
  torch::Tensor map_zip(const Slot& slot, bool may_view) const;
  torch::Tensor read_legacy(const Slot& slot) const;
};

// ---- zip format ------------------------------------------------------------------------------

void Checkpoint::Impl::open_zip() {
  format = "zip";
  // Checked before LibTorch allocates what the records declare.
  const auto records = zip::read_directory(path, file_size);
  zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  if (zip->hasRecord("byteorder")) {
    auto [data, size] = zip->getRecord("byteorder");
    const std::string order(static_cast<const char*>(data.get()), size);
    if (order != "little") fail(path, "storages are stored " + order + "-endian");
  }
  if (!zip->hasRecord("data.pkl")) fail(path, "zip archive has no data.pkl");
  auto [data, size] = zip->getRecord("data.pkl");
  pickle::MemorySource src(data.get(), size);
  pickle::Arena arena;
  take_state_dict(pickle::unpickle(src, arena));
  for (size_t k = 0; k < entries.size(); ++k) {
    if (!zip->hasRecord("data/" + slots[k].ref.storage.key))
      fail(path, "storage of '" + entries[k].key + "' is missing from the archive");
  }
  // Records are named "<archive>/data/<key>"; the reader answers to "data/<key>".
  for (const auto& [name, r] : records) {
    const auto slash = name.find('/');
    if (r.method != 0 || slash == std::string::npos) continue;
    const std::string short_name = name.substr(slash + 1);
    if (short_name.rfind("data/", 0) == 0) stored[short_name] = r.uncompressed;
  }
}

// Maps the file the first time a stored record is loaded, so that opening a checkpoint only to
// read its shapes (info, batch's settings) maps and reads nothing.
const MappedFile* Checkpoint::Impl::mapping() const {
  std::call_once(map_once, [this] {
    auto file = std::make_shared<const MappedFile>(path, file_size);
    if (file->data()) map = std::move(file);
  });
  return map.get();
}

// The tensor from the mapping: a view of its record's bytes when `may_view` and it is contiguous,
// else a contiguous copy of them; undefined when the record cannot be used in place (compressed,
// not mappable, misaligned), and is read instead.
std::optional<uint64_t> Checkpoint::Impl::mapped_record(const Slot& slot) const {
  const std::string name = "data/" + slot.ref.storage.key;
  const auto it = stored.find(name);
  if (it == stored.end() || !mapping()) return {};
  const uint64_t offset = zip->getRecordOffset(name), size = it->second;
  if (offset > file_size || size > file_size - offset) return {};
  if (uint64_t(slot.end) > size) fail(path, "storage record is shorter than its tensor needs");
  return offset;
}

torch::Tensor Checkpoint::Impl::map_zip(const Slot& slot, bool may_view) const {
  const auto offset = mapped_record(slot);
  if (!offset) return {};
  const int64_t elem = int64_t(c10::elementSize(slot.ref.dtype));
  char* first = map->data() + *offset + slot.begin;
  if (reinterpret_cast<uintptr_t>(first) % uintptr_t(elem) != 0) return {};
  map->populate(*offset + uint64_t(slot.begin), *offset + uint64_t(slot.end));
  auto owner = map;
  at::Tensor whole = at::from_blob(
      first, {(slot.end - slot.begin) / elem}, [owner](void*) {},
      at::TensorOptions().dtype(slot.ref.dtype));
  at::Tensor t =
      whole.as_strided(slot.ref.sizes, slot.ref.strides, slot.ref.offset - slot.begin / elem);
  return may_view && t.is_contiguous() ? t : t.clone(at::MemoryFormat::Contiguous);
}

torch::Tensor Checkpoint::Impl::read_zip(const Slot& slot, bool may_view) const {
  if (at::Tensor t = map_zip(slot, may_view); t.defined()) return t;
  auto [data, size] = zip->getRecord("data/" + slot.ref.storage.key);
  if (int64_t(size) < slot.end) fail(path, "storage record is shorter than its tensor needs");
  // The record's buffer becomes the tensor's storage; the tensor keeps it alive.
  auto owner = std::make_shared<at::DataPtr>(std::move(data));
  char* base = static_cast<char*>(owner->get());
  const int64_t elem = int64_t(c10::elementSize(slot.ref.dtype));
  at::Tensor whole = at::from_blob(
      base + slot.begin, {(slot.end - slot.begin) / elem}, [owner](void*) {},
      at::TensorOptions().dtype(slot.ref.dtype));
  at::Tensor t =
      whole.as_strided(slot.ref.sizes, slot.ref.strides, slot.ref.offset - slot.begin / elem);
  // Keep the record buffer only when the tensor is exactly all of it; otherwise copy out the
  // part we need so a small view does not pin a large shared storage.
  if (t.is_contiguous() && slot.begin == 0 && slot.end == int64_t(size)) return t;
  return t.clone(at::MemoryFormat::Contiguous);
}

// ---- legacy format ---------------------------------------------------------------------------

namespace {
// The first pickle of a legacy file is this magic number (0x1950a86a20f9469cfc6c), as LONG1.
bool is_legacy_magic(const Value* v) {
  static const char kMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
  return v->kind == Kind::kBigInt && v->str == std::string(kMagic, 10);
}
}  // namespace

void Checkpoint::Impl::open_legacy() {
  format = "legacy";
  FileSource src(path, file_size);
  pickle::Arena arena;
  try {
    if (!is_legacy_magic(pickle::unpickle(src, arena))) throw pickle::Error("wrong magic number");
  } catch (const pickle::Error& e) {
    fail(path, std::string("not a PyTorch checkpoint (") + e.what() + ")");
  }
  const Value* proto = pickle::unpickle(src, arena);
  if (proto->kind != Kind::kInt || proto->i != 1001)
    fail(path, "unsupported legacy protocol version");
  const Value* sys_info = pickle::unpickle(src, arena);
  if (const Value* le = sys_info->get("little_endian"); le && le->kind == Kind::kBool && !le->i)
    fail(path, "written on a big-endian machine");

  // Element sizes of the storages, learned from the persistent ids, to size the data section.
  std::unordered_map<std::string, StorageRef> storages;
  auto record = [&storages](pickle::Arena& a, Value* pid) {
    Value* v = pickle::torch_persistent_load(a, pid);
    storages.emplace(v->storage->key, *v->storage);
    return v;
  };
  const Value* top = pickle::unpickle(src, arena, record);
  const Value* keys = pickle::unpickle(src, arena);
  if (keys->kind != Kind::kList) fail(path, "storage key list is missing");
  for (const Value* key : keys->items) {
    if (key->kind != Kind::kString) fail(path, "storage key is not a string");
    auto it = storages.find(key->str);
    if (it == storages.end()) fail(path, "data section names unknown storage " + key->str);
    if (it->second.dtype == c10::ScalarType::Undefined)
      fail(path, "unsupported storage type " + it->second.type_name);
    uint64_t count;
    src.read(&count, sizeof count);
    const uint64_t elem = c10::elementSize(it->second.dtype);
    if (count > src.remaining() / elem)
      fail(path, "truncated: storage " + key->str + " is cut off");
    spans[key->str] = {src.position(), count * elem};
    src.skip(count * elem);
  }
  take_state_dict(top);
  for (size_t k = 0; k < entries.size(); ++k) {
    auto it = spans.find(slots[k].ref.storage.key);
    if (it == spans.end())
      fail(path, "storage of '" + entries[k].key + "' is missing from the data section");
    if (uint64_t(slots[k].end) > it->second.nbytes)
      fail(path, "storage of '" + entries[k].key + "' is shorter than the tensor needs");
  }
}

torch::Tensor Checkpoint::Impl::read_legacy(const Slot& slot) const {
  const StorageSpan& span = spans.at(slot.ref.storage.key);
  const int64_t elem = int64_t(c10::elementSize(slot.ref.dtype));
  // Read just the bytes this tensor covers, straight into the tensor's own buffer.
  at::Tensor buf =
      at::empty({(slot.end - slot.begin) / elem}, at::TensorOptions().dtype(slot.ref.dtype));
  std::ifstream in(path, std::ios::binary);
  in.seekg(std::streamoff(span.offset + uint64_t(slot.begin)));
  in.read(static_cast<char*>(buf.data_ptr()), std::streamsize(slot.end - slot.begin));
  if (!in || in.gcount() != slot.end - slot.begin) fail(path, "cannot read storage bytes");
  at::Tensor t =
      buf.as_strided(slot.ref.sizes, slot.ref.strides, slot.ref.offset - slot.begin / elem);
  return t.is_contiguous() && t.numel() == buf.numel() ? t : t.clone(at::MemoryFormat::Contiguous);
}

// ---- shared ----------------------------------------------------------------------------------

// Validates a tensor against its storage and works out which bytes of the storage it reads.
Slot Checkpoint::Impl::check_tensor(const std::string& key, const TensorRef& ref) const {
  const std::string where = "tensor '" + key + "'";
  if (ref.dtype == c10::ScalarType::Undefined || ref.storage.dtype == c10::ScalarType::Undefined)
    fail(path, where + " has unsupported storage type " + ref.storage.type_name);
  if (ref.offset < 0) fail(path, where + " has a negative storage offset");
  Slot s{ref, 1, 0, 0};
  int64_t last = ref.offset;  // index of the last element read, in tensor elements
  for (size_t d = 0; d < ref.sizes.size(); ++d) {
    if (ref.sizes[d] < 0) fail(path, where + " has a negative dimension");
    if (ref.strides[d] < 0) fail(path, where + " has a negative stride");
    s.numel = mul(s.numel, ref.sizes[d], path);
  }
  const int64_t elem = int64_t(c10::elementSize(ref.dtype));
  const int64_t storage_elem = int64_t(c10::elementSize(ref.storage.dtype));
  // Bytes the storage (or the legacy storage view) holds, and where the view starts.
  const int64_t root_bytes = mul(ref.storage.numel, storage_elem, path);
  int64_t view_begin = 0, view_bytes = root_bytes;
  if (ref.storage.view_numel >= 0) {
    view_begin = mul(ref.storage.view_offset, storage_elem, path);
    view_bytes = mul(ref.storage.view_numel, storage_elem, path);
    if (add(view_begin, view_bytes, path) > root_bytes)
      fail(path, where + " uses a storage view beyond its storage");
  }
  if (s.numel == 0) return s;  // nothing to read
  for (size_t d = 0; d < ref.sizes.size(); ++d)
    last = add(last, mul(ref.sizes[d] - 1, ref.strides[d], path), path);
  const int64_t end = mul(add(last, 1, path), elem, path);
  if (end > view_bytes)
    fail(path, where + " needs " + std::to_string(end) + " bytes but its storage holds " +
                   std::to_string(view_bytes));
  s.begin = view_begin + mul(ref.offset, elem, path);
  s.end = view_begin + end;
  return s;
}

// Picks the state dict: under 'model', under 'state_dict', or the top-level dict itself.
void Checkpoint::Impl::take_state_dict(const Value* top) {
  if (top->kind != Kind::kDict) fail(path, "no state dict found (the file holds no dict)");
  const Value* sd = nullptr;
  for (const char* name : {"model", "state_dict"}) {
    if (has_tensor(top->get(name))) {
      sd = top->get(name);
      location = name;
      break;
    }
  }
  if (!sd && has_tensor(top)) sd = top;
  if (!sd) fail(path, "no state dict found (looked at the top level, 'model' and 'state_dict')");

  // Strip "module." (DataParallel) only when every tensor key has it.
  const std::string prefix = "module.";
  bool all_prefixed = true;
  for (const auto& [k, v] : sd->dict->items) {
    if (k->kind == Kind::kString && v->kind == Kind::kTensor && k->str.rfind(prefix, 0) != 0)
      all_prefixed = false;
  }
  for (const auto& [k, v] : sd->dict->items) {
    if (k->kind != Kind::kString || v->kind != Kind::kTensor) continue;  // not a weight
    const std::string key = all_prefixed ? k->str.substr(prefix.size()) : k->str;
    if (index.count(key)) fail(path, "duplicate state dict key '" + key + "'");
    slots.push_back(check_tensor(key, *v->tensor));
    index.emplace(key, entries.size());
    entries.push_back({key, v->tensor->dtype, v->tensor->sizes});
  }
}

torch::Tensor Checkpoint::Impl::read(const Slot& slot, bool may_view) const {
  if (slot.numel == 0) return at::empty(slot.ref.sizes, at::TensorOptions().dtype(slot.ref.dtype));
  return zip ? read_zip(slot, may_view) : read_legacy(slot);
}

namespace {
// Runs `body`, turning every failure into a ModelError that names the file.
template <typename F>
auto guarded(const std::string& path, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const ModelError&) {
    throw;
  } catch (const c10::Error& e) {
    fail(path, std::string("not a readable PyTorch file (") + e.what_without_backtrace() + ")");
  } catch (const pickle::Error& e) {
    fail(path, e.what());
  } catch (const std::bad_alloc&) {
    fail(path, "out of memory while reading");
  } catch (const std::exception& e) {
    fail(path, e.what());
  }
}
}  // namespace

// ---- public API ------------------------------------------------------------------------------

Checkpoint Checkpoint::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail(path, "file not found");
  if (!fs::is_regular_file(st)) fail(path, "not a regular file");
  impl->file_size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot read the file size");
  if (impl->file_size == 0) fail(path, "file is empty");

  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(magic, sizeof magic);
  if (!in && in.gcount() == 0) fail(path, "cannot read the file");
  guarded(path, [&] {
    if (in.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0) {
      impl->open_zip();
    } else if (uint8_t(magic[0]) == 0x80) {  // a pickle PROTO opcode: the legacy format
      impl->open_legacy();
    } else {
      fail(path, "not a PyTorch checkpoint (neither a zip archive nor a pickle)");
    }
  });
  return Checkpoint(std::move(impl));
}

Checkpoint::Checkpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Checkpoint::~Checkpoint() = default;
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;

const std::string& Checkpoint::path() const {
  return impl_->path;
}
const std::string& Checkpoint::format() const {
  return impl_->format;
}
const std::string& Checkpoint::location() const {
  return impl_->location;
}
const std::vector<TensorEntry>& Checkpoint::entries() const {
  return impl_->entries;
}
bool Checkpoint::contains(const std::string& key) const {
  return impl_->index.count(key) > 0;
}

const TensorEntry& Checkpoint::entry(const std::string& key) const {
  auto it = impl_->index.find(key);
  if (it == impl_->index.end()) fail(impl_->path, "no tensor named '" + key + "'");
  return impl_->entries[it->second];
}

torch::Tensor Checkpoint::load(const std::string& key) const {
  return read(key, /*may_view=*/false);
}

torch::Tensor Checkpoint::view(const std::string& key) const {
  return read(key, /*may_view=*/true);
}

void Checkpoint::release(const std::string& key) const {
  auto it = impl_->index.find(key);
  if (it == impl_->index.end()) return;
  const Slot& slot = impl_->slots[it->second];
  guarded(impl_->path, [&] {
    if (const auto offset = impl_->mapped_record(slot))
      impl_->map->release(*offset + uint64_t(slot.begin), *offset + uint64_t(slot.end));
    return 0;
  });
}

torch::Tensor Checkpoint::read(const std::string& key, bool may_view) const {
  auto it = impl_->index.find(key);
  if (it == impl_->index.end()) fail(impl_->path, "no tensor named '" + key + "'");
  return guarded(impl_->path, [&] { return impl_->read(impl_->slots[it->second], may_view); });
}

}  // namespace stam
