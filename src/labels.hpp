#pragma once
// Class names, one a line, line k = class index k.
#include <string>
#include <vector>

namespace stam {

// Throws ModelError naming the file when it is missing or empty.
std::vector<std::string> read_labels(const std::string& path);

}  // namespace stam
