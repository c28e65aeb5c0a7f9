#include "stam/labels.hpp"

#include <fstream>

#include "stam/error.hpp"

namespace stam {

std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ModelError(path + ": cannot open the labels file");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
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
