#pragma once
// The one door to a model: every command (classify, batch, eval, embed, timeline, bench, info)
// and the library's Classifier get theirs from load_model(), so the checkpoint's frame count and
// the `auto` precision are resolved in one place, and recorded in what it returns.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stam/stam.hpp"

#include "checkpoint/checkpoint.hpp"
#include "model/model.hpp"
#include "model/precision.hpp"

namespace stam {

// The checkpoint a run uses, opened (its index: no tensor is read yet), and the architecture it
// holds with the run's frame count: `options.frames` when given, else the checkpoint's own T.
// Without weights (`with_weights` false) no file is opened and the architecture is STAM-16's.
// Throws ModelError.
struct ModelSource {
  std::string weights;                           // the path resolved; "" without weights
  std::shared_ptr<const Checkpoint> checkpoint;  // null without weights
  StamConfig config;
};
ModelSource open_model(const ModelOptions& options);

struct LoadedModel {
  Stam model{nullptr};  // on its device, weights in, in eval mode
  StamConfig config;    // model->config: the frame count resolved
  torch::Device device{torch::kCPU};
  PrecisionChoice precision;                     // `auto` resolved, and why
  std::string weights;                           // the path resolved; "" for random weights
  std::shared_ptr<const Checkpoint> checkpoint;  // null for random weights
  std::vector<std::string> labels;               // empty unless `with_labels`
  double load_ms = 0;                            // from the call to the weights in place
};

// Called once the device, the architecture, the precision and the labels are known, before the
// weights load (most of the load time), with `model` not yet built: callers start reading
// inputs meanwhile.
using BeforeWeights = std::function<void(const LoadedModel& loaded)>;

// Prepares the CPU runtime (threads), resolves and checks the device and precision (before any
// file is looked for), opens the checkpoint, reads and checks the labels, then builds the model
// in place on its device and dtype and loads the weights (random ones, seeded, without weights).
// Throws UsageError, DeviceError or ModelError (also after `before_weights` was called).
LoadedModel load_model(const ModelOptions& options, const BeforeWeights& before_weights = {});

// The labels `options` names, read; a top_k beyond their class count (every class in the top k:
// empty CSV columns in batch, 100 % top-k in eval) is lowered to it, with a warning. Throws
// ModelError.
std::vector<std::string> read_labels_fitting_top_k(ModelOptions& options);

}  // namespace stam
