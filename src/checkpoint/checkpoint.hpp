#pragma once
// Reads the state dict out of a file written by Python's torch.save, without Python.
//
// Both container formats are supported: the zip archive of PyTorch >= 1.6 and the legacy
// single-stream pickle format. The state dict may sit at the top level, under 'model' or under
// 'state_dict'; a leading "module." on every key is stripped. Anything else in the file
// (epochs, argparse.Namespace, numpy scalars, optimizer state) is parsed as inert data and
// ignored: no Python object is ever constructed or called.
//
// Zip files are mapped into memory, and view() gives their (uncompressed) tensors as views of the
// mapping, which they keep alive: a model that takes them copies nothing (each tensor's pages are
// read in when it is viewed, not at open). Other tensors (legacy
// files, compressed records) are read lazily, one at a time, so a loader that converts each into
// its destination never holds two full copies of the weights.
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace stam {

struct TensorEntry {
  std::string key;             // state dict key, "module." stripped
  c10::ScalarType dtype;       // storage dtype as written
  std::vector<int64_t> sizes;  // tensor shape
};

class Checkpoint {
 public:
  // Throws ModelError naming `path` and the problem (missing, not a checkpoint, no state dict,
  // unsupported storage type, truncated data).
  static Checkpoint open(const std::string& path);

  ~Checkpoint();
  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;

  const std::string& path() const;
  // "zip" or "legacy".
  const std::string& format() const;
  // Where the state dict was found: "model", "state_dict" or "" (top level).
  const std::string& location() const;

  // Tensor entries in file order.
  const std::vector<TensorEntry>& entries() const;
  bool contains(const std::string& key) const;
  // Throws ModelError naming the key when absent.
  const TensorEntry& entry(const std::string& key) const;

  // One tensor as a contiguous CPU tensor of its stored dtype, with memory of its own.
  torch::Tensor load(const std::string& key) const;
  // The same values without a copy when the file allows: a view of the mapped file that keeps it
  // mapped. Writing to it never reaches the file, but other views of the same bytes see it.
  torch::Tensor view(const std::string& key) const;
  // Drops from memory the mapped pages that hold only `key`'s bytes, for a loader that has
  // converted the tensor into memory of its own: the mapping then never stays resident beside
  // the converted weights. A view still in use reads them from the file again. No-op for tensors
  // that were not mapped.
  void release(const std::string& key) const;

 private:
  torch::Tensor read(const std::string& key, bool may_view) const;
  struct Impl;
  explicit Checkpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stam
