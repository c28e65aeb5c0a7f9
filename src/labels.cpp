#include "labels.hpp"

#include <filesystem>
#include <fstream>

#include "stam/error.hpp"

namespace stam {

namespace {

// Far above any real class list (Kinetics-400's is 5 kB, 400 names of at most 50 bytes): a file
// past these is not a labels file, and reading it whole would only cost memory.
constexpr std::uintmax_t kMaxFileBytes = 16u << 20;
constexpr size_t kMaxLineBytes = 4096;

void check_labels_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw ModelError(path + ": no such labels file");
  if (!fs::is_regular_file(st))
    throw ModelError(path + ": not a regular file (expected class names, one a line)");
  const auto size = fs::file_size(path, ec);
  if (!ec && size > kMaxFileBytes)
    throw ModelError(path + ": " + std::to_string(size) +
                     " bytes is too large for a labels file (" + std::to_string(kMaxFileBytes) +
                     " at most)");
}

}  // namespace

std::vector<std::string> read_labels(const std::string& path) {
  check_labels_file(path);
  std::ifstream in(path);
  if (!in) throw ModelError(path + ": cannot open the labels file");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // A UTF-8 byte order mark, as Windows editors write, is no part of the first class name.
    if (labels.empty() && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (line.size() > kMaxLineBytes)
      throw ModelError(path + ": line " + std::to_string(labels.size() + 1) + " is " +
                       std::to_string(line.size()) + " bytes long, not a class name");
    labels.push_back(line);
  }
  // A trailing newline is normal; trailing blank lines are not classes.
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  if (labels.empty()) throw ModelError(path + ": the labels file is empty");
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i].empty())
      throw ModelError(path + ": line " + std::to_string(i + 1) + " is blank (one class a line)");
  return labels;
}

}  // namespace stam
