#pragma once
// Checks on an input file before it is read, shared by the readers of videos and of arrays.
#include <string>

namespace stam {

// Throws InputError naming `path` when it is missing, not a regular file, empty or cannot be
// opened for reading. Non-regular files (FIFOs, devices) are refused because opening them can
// block forever.
void check_readable_file(const std::string& path);

}  // namespace stam
