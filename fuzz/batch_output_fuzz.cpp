// libFuzzer target: the reader that `stam batch --resume` runs over an existing output file.
// The first byte picks the format (JSONL or CSV) and --top-k (1 to 5); the rest is the file.
// It may only fail with a UsageError ("not a stam batch file ...").
#include <cstddef>
#include <cstdint>

#include "batch/batch.hpp"
#include "scratch_file.hpp"
#include "stam/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static stam::fuzz::ScratchFile file;
  if (size == 0) return 0;
  const auto format = data[0] & 1 ? stam::batch::Format::kCsv : stam::batch::Format::kJsonl;
  const int64_t top_k = 1 + (data[0] >> 1) % 5;
  try {
    stam::batch::scan_output(file.write(data + 1, size - 1), format, top_k);
  } catch (const stam::Error& e) {
    if (e.code() != stam::Exit::kUsage) throw;  // any other failure is a bug
  }
  return 0;
}
