// libFuzzer target: stam::Checkpoint on arbitrary bytes, zip or legacy pickle (the first bytes
// pick the reader, as for a real file). Opening may only fail with a ModelError; every tensor of
// a checkpoint that opens is loaded too, so storage offsets and shapes are exercised.
#include <cstddef>
#include <cstdint>

#include "checkpoint/checkpoint.hpp"
#include "scratch_file.hpp"
#include "stam/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static stam::fuzz::ScratchFile file;
  try {
    const stam::Checkpoint ckpt = stam::Checkpoint::open(file.write(data, size));
    for (const stam::TensorEntry& e : ckpt.entries()) ckpt.load(e.key);
  } catch (const stam::ModelError&) {
    // the expected outcome for a malformed file
  }
  return 0;
}
