#pragma once
// From an input path to labelled scores: decode -> sample -> preprocess -> model -> top-k. The
// Classifier and ClipReader that do it are declared in the public stam/stam.hpp; this adds what
// the library's own callers need beside them.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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

// `inputs` checked without decoding (check_input), before any model loads, so a typo costs no
// load. Each problem is logged as it is found.
struct CheckedInputs {
  std::vector<std::string> problems;  // one per input: why it cannot be labelled, "" if it may be
  std::vector<std::string> readable;  // the inputs that passed, in order
};
CheckedInputs check_inputs(const std::vector<std::string>& inputs);

// What became of one input in classify_each: its result, or why it has none.
struct Outcome {
  std::string input;
  std::optional<Result> result;  // unset when it failed
  std::string error;             // the message, logged already
  int exit_code = 0;             // the error's Exit code; 0 with a result
};

// Labels `inputs` in order with one model, as `stam classify` does: they are checked first
// (check_inputs), and the model is loaded only when some input passed; decoding runs one input
// ahead of the model, the first while the model loads. An input that fails is logged and the
// others go on. `done` gets each input's outcome in order, with the classifier (null when none
// was loaded). Returns the worst exit code. Throws what load_model throws.
using OutcomeSink = std::function<void(const Outcome& outcome, const Classifier* classifier)>;
int classify_each(const ModelOptions& options, const std::vector<std::string>& inputs,
                  const OutcomeSink& done);

}  // namespace stam
