// The run `stam batch` and `stam eval` make: batch::run with the classifier, its settings recorded
// beside the output.
#include <spdlog/spdlog.h>

#include "batch/batch.hpp"
#include "device.hpp"
#include "model/load.hpp"

namespace stam::batch {

Summary run_classifier(Options options, ModelOptions model, std::istream& list_stdin) {
  read_labels_fitting_top_k(model);
  options.top_k = model.top_k;
  options.settings = model_settings(model, options.logits);
  if (options.decode_workers == 0)
    options.decode_workers = default_decode_workers(resolve_device(model.device).is_cuda());
  SignalGuard signals;
  const Summary s = run(options, classifier_engine(model), list_stdin);
  spdlog::info("{}", summary_line(s));
  return s;
}

}  // namespace stam::batch
