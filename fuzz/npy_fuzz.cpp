// libFuzzer target: stam::read_npy on arbitrary bytes; it may only fail with an InputError.
#include <cstddef>
#include <cstdint>

#include "scratch_file.hpp"
#include "stam/error.hpp"
#include "util/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static stam::fuzz::ScratchFile file;
  try {
    stam::read_npy(file.write(data, size));
  } catch (const stam::InputError&) {
    // the expected outcome for anything that is not a whole .npy file
  }
  return 0;
}
