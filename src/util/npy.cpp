#include "util/npy.hpp"

#include <cctype>
#include <fstream>
#include <limits>

#include "stam/error.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
// NumPy itself refuses headers past 10000 bytes by default; a frames array needs ~100.
constexpr uint32_t kMaxHeader = 1 << 16;

// A cursor over the header dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (16, ...), }",
// which NumPy writes as a Python literal.
class HeaderParser {
 public:
  HeaderParser(std::string text, std::string path) : s_(std::move(text)), path_(std::move(path)) {}

  NpyArray parse() {
    NpyArray out;
    bool descr = false, order = false, shape = false;
    expect('{');
    while (!take('}')) {
      const std::string key = quoted();
      expect(':');
      if (key == "descr") {
        out.descr = quoted();
        descr = true;
      } else if (key == "fortran_order") {
        out.fortran_order = boolean();
        order = true;
      } else if (key == "shape") {
        out.shape = tuple();
        shape = true;
      } else {
        fail("unknown key '" + key + "'");
      }
      if (!take(',')) {
        expect('}');
        break;
      }
    }
    if (!descr || !order || !shape) fail("it lacks 'descr', 'fortran_order' or 'shape'");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(quoted_path(path_) + ": not a NumPy .npy header NumPy writes (" + what + ")");
  }

  void skip_space() {
    while (at_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[at_]))) ++at_;
  }
  bool take(char c) {
    skip_space();
    if (at_ < s_.size() && s_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!take(c)) fail(std::string("expected '") + c + "' at byte " + std::to_string(at_));
  }
  std::string quoted() {
    skip_space();
    if (at_ >= s_.size() || (s_[at_] != '\'' && s_[at_] != '"')) fail("expected a quoted name");
    const char q = s_[at_++];
    const size_t end = s_.find(q, at_);
    if (end == std::string::npos) fail("unterminated string");
    std::string v = s_.substr(at_, end - at_);
    at_ = end + 1;
    return v;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      const std::string w = word;
      if (s_.compare(at_, w.size(), w) == 0) {
        at_ += w.size();
        return value;
      }
    }
    fail("fortran_order is not True or False");
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> dims;
    expect('(');
    while (!take(')')) {
      skip_space();
      int64_t v = 0;
      size_t digits = 0;
      while (at_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[at_]))) {
        if (++digits > 15) fail("a dimension is too large");
        v = v * 10 + (s_[at_++] - '0');
      }
      if (digits == 0) fail("a dimension is not a whole number");
      dims.push_back(v);
      if (dims.size() > 32) fail("more than 32 dimensions");
      if (!take(',')) {
        expect(')');
        break;
      }
    }
    return dims;
  }

  std::string s_, path_;
  size_t at_ = 0;
};

}  // namespace

std::string npy_header(const std::string& descr, const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.erase(dims.size() - 2);  // "(N,)" keeps its comma, "(N, D)" not
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + dict, padded with spaces and ended with a newline to
  // a multiple of 64 bytes.
  const size_t total = (10 + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - 10 - dict.size() - 1, ' ');
  dict += '\n';
  const auto len = static_cast<uint16_t>(dict.size());
  std::string out(kMagic, kMagicSize);
  out += {1, 0, static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  return out + dict;
}

int npy_item_size(const std::string& descr) {
  if (descr.size() < 3 || std::string("<>|=").find(descr[0]) == std::string::npos) return 0;
  const std::string kind = descr.substr(1, 1), size = descr.substr(2);
  if (std::string("iufb").find(kind) == std::string::npos) return 0;
  for (const char* n : {"1", "2", "4", "8"})
    if (size == n) return std::stoi(size);
  return 0;
}

NpyArray read_npy(const std::string& path) {
  const std::string name = quoted_path(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(name + ": cannot open");
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);

  char preamble[8];
  if (!in.read(preamble, sizeof preamble) || std::string(preamble, kMagicSize) != kMagic)
    throw InputError(name + ": not a NumPy .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(preamble[6]);
  if (major < 1 || major > 3)
    throw InputError(name + ": .npy format version " + std::to_string(major) +
                     " is not one this reader knows (1 to 3)");
  const int len_bytes = major == 1 ? 2 : 4;
  unsigned char len_raw[4] = {0, 0, 0, 0};
  if (!in.read(reinterpret_cast<char*>(len_raw), len_bytes))
    throw InputError(name + ": the .npy header is cut off");
  uint32_t header_len = 0;
  for (int i = len_bytes - 1; i >= 0; --i) header_len = header_len << 8 | len_raw[i];
  const uint64_t data_at = 8 + static_cast<uint64_t>(len_bytes) + header_len;
  if (header_len > kMaxHeader || data_at > file_size)
    throw InputError(name + ": the .npy header says " + std::to_string(header_len) +
                     " bytes, more than the file holds or a header needs");
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);

  NpyArray out = HeaderParser(header, path).parse();
  const int item = npy_item_size(out.descr);
  if (item == 0)
    throw InputError(name + ": dtype '" + out.descr + "' is not a fixed-size number type");
  uint64_t count = 1;
  for (int64_t d : out.shape) {
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / 16 / static_cast<uint64_t>(d))
      throw InputError(name + ": the shape's element count overflows");
    count *= static_cast<uint64_t>(d);
  }
  const uint64_t want = count * static_cast<uint64_t>(item), have = file_size - data_at;
  if (want != have)
    throw InputError(name + ": the shape and dtype need " + std::to_string(want) +
                     " bytes of data, the file has " + std::to_string(have) +
                     (want > have ? " (cut off?)" : ""));
  out.data.resize(static_cast<size_t>(want));
  if (!in.read(reinterpret_cast<char*>(out.data.data()), static_cast<std::streamsize>(want)))
    throw InputError(name + ": read failed");
  return out;
}

}  // namespace stam
