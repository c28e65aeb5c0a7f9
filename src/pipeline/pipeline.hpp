#pragma once
// From an input path to labelled scores: decode -> sample -> preprocess -> model -> top-k. The
// Classifier and ClipReader that do it are declared in the public stam/stam.hpp; this adds what
// the library's own callers need beside them. The folder's files: classifier.cpp (the model's
// door), clip_reader.cpp (an input to a clip: .npy frames here, videos through video_clip.cpp,
// built with STAM_VIDEO), inputs.cpp (many inputs, one model).
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stam/stam.hpp"

#include "device.hpp"
#include "model/files.hpp"
#include "model/load.hpp"
#include "model/model.hpp"
#include "model/precision.hpp"
#include "prefetch.hpp"
#include "sample.hpp"

namespace stam {

// An empty host tensor of uint8 frames bound for `device`: pinned when it is a GPU, for
// asynchronous uploads, in that GPU's context.
torch::Tensor frames_buffer(at::IntArrayRef sizes, torch::Device device);

// The checks before any model loads (check_inputs): a .npy array of frames must be a readable
// file; anything else goes to the video reader's check_input, or is refused by a build without
// video. Throws InputError.
void check_clip_input(const std::string& input);

// Whether `input` is read as a .npy array of frames rather than a video.
bool is_frames_array(const std::string& input);

// Reads `inputs` in order on a background thread, one ahead of the caller (see Prefetcher): the
// caller runs the model on one clip while the next is decoded.
std::unique_ptr<Prefetcher<Clip>> prefetch_clips(const ClipReader& reader,
                                                 std::vector<std::string> inputs);

// `inputs` checked without decoding (check_clip_input), before any model loads, so a typo costs no
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
