#pragma once
// From an input path to labelled scores: decode -> sample -> preprocess -> model -> top-k. The
// Classifier and ClipReader that do it are declared in the public stam/stam.hpp; this adds what
// the library's own callers need beside them.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stam/stam.hpp"

#include "decode/decode.hpp"
#include "device.hpp"
#include "model/files.hpp"
#include "model/load.hpp"
#include "model/model.hpp"
#include "model/precision.hpp"
#include "prefetch.hpp"
#include "sample.hpp"

namespace stam {

// Reads `inputs` in order on a background thread, one ahead of the caller (see Prefetcher): the
// caller runs the model on one clip while the next is decoded.
std::unique_ptr<Prefetcher<Clip>> prefetch_clips(const ClipReader& reader,
                                                 std::vector<std::string> inputs);

}  // namespace stam
