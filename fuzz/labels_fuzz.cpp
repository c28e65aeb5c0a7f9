// libFuzzer target: stam::read_labels on arbitrary bytes; it may only fail with a ModelError.
#include <cstddef>
#include <cstdint>

#include "labels.hpp"
#include "scratch_file.hpp"
#include "stam/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static stam::fuzz::ScratchFile file;
  try {
    stam::read_labels(file.write(data, size));
  } catch (const stam::ModelError&) {
    // the expected outcome for an empty file or a blank line
  }
  return 0;
}
