#pragma once
// NumPy's .npy format (format versions 1.0 to 3.0): the header `stam embed` writes, and a reader
// for the arrays of frames `stam classify` takes. A reader of untrusted files: every length is
// checked against the file before it is used.
#include <cstdint>
#include <string>
#include <vector>

namespace stam {

struct NpyArray {
  std::string descr;           // the dtype as NumPy spells it: "|u1", "<f4", ...
  bool fortran_order = false;  // column-major data
  std::vector<int64_t> shape;
  std::vector<unsigned char> data;  // the elements, as stored
};

// The bytes before the data of a C-order array of `descr` and `shape` (format 1.0): magic,
// version, length and the header dict, padded to a multiple of 64 bytes.
std::string npy_header(const std::string& descr, const std::vector<int64_t>& shape);

// Reads a whole .npy file. Throws InputError naming `path` and what is wrong (not .npy, a
// header it cannot parse, a dtype whose element size it does not know, data shorter or longer
// than the shape says).
NpyArray read_npy(const std::string& path);

// The element size in bytes of a dtype descr ("|u1" -> 1, "<f4" -> 4), or 0 when it is not one
// of NumPy's fixed-size numeric types.
int npy_item_size(const std::string& descr);

}  // namespace stam
