#pragma once
// Internal, for stam::Checkpoint: checks the sizes a zip archive declares before LibTorch's
// reader allocates anything from them, and says which records are stored (not compressed), so
// that their bytes can be used where they lie in the file.
//
// PyTorchStreamReader::getRecord allocates a record's declared uncompressed size and only then
// inflates into it, so a hostile archive could ask for terabytes with a few bytes. This walks
// the central directory the way miniz (LibTorch's zip library) finds it, and accepts a record
// only when its bytes lie inside the archive and its declared size is one the stored bytes can
// really produce: equal for a stored record, at most kMaxDeflateRatio times for a deflated one.
#include <cstdint>
#include <string>
#include <unordered_map>

namespace stam::zip {

// Deflate cannot expand data more than about 1032:1 (258-byte matches coded in 2 bits).
constexpr uint64_t kMaxDeflateRatio = 1032;

struct Record {
  uint64_t method;        // 0 stored, 8 deflated
  uint64_t compressed;    // bytes in the archive
  uint64_t uncompressed;  // bytes once read
  uint64_t local_offset;  // where the record's local header starts
  uint32_t crc32;         // of the uncompressed bytes, as the directory states it
};

// Every record of the archive at `path` (`size` bytes), checked, by name. Throws
// std::runtime_error saying what is wrong with the archive.
std::unordered_map<std::string, Record> read_directory(const std::string& path, uint64_t size);

}  // namespace stam::zip
