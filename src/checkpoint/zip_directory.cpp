// The central directory walk behind zip::read_directory; see zip_directory.hpp.
// Field offsets are those of the zip specification (APPNOTE.TXT, sections 4.3.12 to 4.3.16).
#include "checkpoint/zip_directory.hpp"

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace stam::zip {
namespace {

constexpr uint32_t kEndSig = 0x06054b50;        // end of central directory record
constexpr uint32_t kEnd64Sig = 0x06064b50;      // zip64 end of central directory record
constexpr uint32_t kLocator64Sig = 0x07064b50;  // zip64 end of central directory locator
constexpr uint32_t kEntrySig = 0x02014b50;      // central directory file header
constexpr size_t kEndSize = 22, kEnd64Size = 56, kLocator64Size = 20, kEntrySize = 46;
constexpr size_t kLocalHeaderSize = 30;
constexpr uint32_t kInZip64 = 0xffffffff;  // a 32-bit field whose value is in the zip64 extra

[[noreturn]] void bad(const std::string& what) {
  throw std::runtime_error("zip archive: " + what);
}

uint64_t le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t k = 0; k < n; ++k) v |= uint64_t(p[k]) << (8 * k);
  return v;
}

class Archive {
 public:
  Archive(const std::string& path, uint64_t size) : in_(path, std::ios::binary), size_(size) {
    if (!in_) bad("cannot open it");
  }
  uint64_t size() const { return size_; }
  // `n` bytes at `pos`; fails when they are not all inside the archive.
  std::vector<uint8_t> read(uint64_t pos, uint64_t n) {
    if (pos > size_ || n > size_ - pos) bad("a directory record points outside the archive");
    std::vector<uint8_t> buf(static_cast<size_t>(n));
    in_.seekg(std::streamoff(pos));
    in_.read(reinterpret_cast<char*>(buf.data()), std::streamsize(n));
    if (uint64_t(in_.gcount()) != n) bad("read error");
    return buf;
  }

 private:
  std::ifstream in_;
  uint64_t size_;
};

struct Directory {
  uint64_t offset = 0, size = 0, entries = 0;
};

// Finds the end record by scanning back from the end (it may be followed by a comment of up to
// 64 KiB), then prefers the zip64 record when a locator precedes it, as miniz does.
Directory find_directory(Archive& a) {
  const uint64_t tail_len = std::min<uint64_t>(a.size(), kEndSize + 0xffff);
  const uint64_t tail_pos = a.size() - tail_len;
  const std::vector<uint8_t> tail = a.read(tail_pos, tail_len);
  if (tail_len < kEndSize) bad("too short for a zip archive");
  size_t at = size_t(tail_len - kEndSize) + 1;
  do {
    if (at-- == 0) bad("no end of central directory record");
  } while (le(&tail[at], 4) != kEndSig);
  const uint8_t* end = &tail[at];
  Directory d{le(end + 16, 4), le(end + 12, 4), le(end + 10, 2)};
  const uint64_t end_pos = tail_pos + at;
  if (end_pos >= kLocator64Size) {
    const std::vector<uint8_t> loc = a.read(end_pos - kLocator64Size, kLocator64Size);
    if (le(loc.data(), 4) == kLocator64Sig) {
      const std::vector<uint8_t> e64 = a.read(le(&loc[8], 8), kEnd64Size);
      if (le(e64.data(), 4) != kEnd64Sig) bad("broken zip64 end of central directory record");
      d = {le(&e64[48], 8), le(&e64[40], 8), le(&e64[32], 8)};
    }
  }
  if (d.entries > d.size / kEntrySize) bad("central directory is too small for its entries");
  return d;
}

// Replaces the 32-bit fields that say kInZip64 with the values of the zip64 extra field.
void apply_zip64_extra(Record& r, const uint8_t* extra, size_t len) {
  for (size_t k = 0; k + 4 <= len;) {
    const uint64_t id = le(extra + k, 2), n = le(extra + k + 2, 2);
    k += 4;
    if (n > len - k) bad("malformed extra field");
    if (id == 1) {
      size_t at = k;
      for (uint64_t* field : {&r.uncompressed, &r.compressed, &r.local_offset}) {
        if (*field != kInZip64) continue;
        if (at + 8 > k + n) bad("malformed zip64 extra field");
        *field = le(extra + at, 8);
        at += 8;
      }
    }
    k += n;
  }
}

void check_record(const Record& r, uint64_t archive_size) {
  if (r.method != 0 && r.method != 8) bad("a record uses an unsupported compression method");
  if (r.method == 0 && r.compressed != r.uncompressed)
    bad("a stored record declares two different sizes");
  // Its local header and data must fit between its offset and the end of the archive.
  if (r.local_offset > archive_size || archive_size - r.local_offset < kLocalHeaderSize ||
      r.compressed > archive_size - r.local_offset - kLocalHeaderSize)
    bad("a record's data lies outside the archive");
  if (r.method == 8 && r.uncompressed / kMaxDeflateRatio > r.compressed)
    bad("a deflated record declares " + std::to_string(r.uncompressed) + " bytes, more than its " +
        std::to_string(r.compressed) + " compressed bytes can hold");
}

}  // namespace

std::unordered_map<std::string, Record> read_directory(const std::string& path, uint64_t size) {
  Archive a(path, size);
  std::unordered_map<std::string, Record> records;
  const Directory d = find_directory(a);
  const std::vector<uint8_t> dir = a.read(d.offset, d.size);
  size_t at = 0;
  for (uint64_t k = 0; k < d.entries; ++k) {
    if (kEntrySize > dir.size() - at || le(&dir[at], 4) != kEntrySig)
      bad("central directory entry " + std::to_string(k) + " is malformed");
    const uint8_t* e = &dir[at];
    Record r{le(e + 10, 2), le(e + 20, 4), le(e + 24, 4), le(e + 42, 4),
             static_cast<uint32_t>(le(e + 16, 4))};
    const size_t name_len = le(e + 28, 2), extra_len = le(e + 30, 2), comment_len = le(e + 32, 2);
    if (name_len + extra_len + comment_len > dir.size() - at - kEntrySize)
      bad("central directory entry " + std::to_string(k) + " is cut off");
    apply_zip64_extra(r, e + kEntrySize + name_len, extra_len);
    check_record(r, size);
    records[std::string(reinterpret_cast<const char*>(e + kEntrySize), name_len)] = r;
    at += kEntrySize + name_len + extra_len + comment_len;
  }
  return records;
}

}  // namespace stam::zip
