#include "util/files.hpp"

#include <filesystem>
#include <fstream>

#include "stam/error.hpp"
#include "util/text.hpp"

namespace fs = std::filesystem;

namespace stam {

void check_readable_file(const std::string& path) {
  const std::string name = quoted_path(path);
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw InputError(name + ": no such file or directory");
  if (!fs::is_regular_file(st)) throw InputError(name + ": not a regular file or folder");
  const auto size = fs::file_size(path, ec);
  if (ec) throw InputError(name + ": cannot read file size: " + ec.message());
  if (size == 0) throw InputError(name + ": file is empty");
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw InputError(name + ": cannot open file for reading");
}

}  // namespace stam
