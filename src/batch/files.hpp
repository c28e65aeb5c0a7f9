#pragma once
// Whole files beside a batch run's output: read back, and replaced atomically (the output itself
// by --retry-errors, its settings file). Defined in output.cpp.
#include <filesystem>
#include <string>

namespace stam::batch {

// All of `path`. Throws Error(kUsage) naming it as the output.
std::string read_all(const std::string& path);

// A new version of `target`, written to a temporary file in the same directory and renamed over
// it by commit() after an fsync: a crash at any point leaves either the old or the new file,
// never a mix. Without commit() the temporary file is removed.
class Replacement {
 public:
  explicit Replacement(const std::string& target);
  ~Replacement();
  Replacement(const Replacement&) = delete;
  Replacement& operator=(const Replacement&) = delete;

  void write(const std::string& bytes);
  void commit();

 private:
  std::filesystem::path target_, tmp_;
  int fd_;
  bool committed_ = false;
};

}  // namespace stam::batch
