#include "model/load.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "device.hpp"
#include "labels.hpp"
#include "model/files.hpp"
#include "stam/error.hpp"

namespace stam {

ModelSource open_model(const ModelOptions& options) {
  ModelSource s;
  if (options.with_weights) {
    s.weights = resolve_weights(options.weights);
    s.checkpoint = std::make_shared<const Checkpoint>(Checkpoint::open(s.weights));
    s.config = StamConfig::from_checkpoint(*s.checkpoint);
  }
  if (options.frames > 0) s.config.frames = options.frames;
  return s;
}

LoadedModel load_model(const ModelOptions& options, const BeforeWeights& before_weights) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel m;
  configure_cpu_runtime(options.threads);
  m.device = resolve_device(options.device);
  check_precision(m.device, options.precision);  // before the weights are looked for; only here

  ModelSource source = open_model(options);
  m.weights = source.weights;
  m.checkpoint = std::move(source.checkpoint);
  m.config = source.config;
  m.precision = choose_precision(m.device, options.precision, m.config);

  if (options.with_labels) {
    const std::string labels_path = resolve_labels(options.labels);
    m.labels = read_labels(labels_path);
    if (static_cast<int64_t>(m.labels.size()) != m.config.num_classes)
      throw ModelError(labels_path + " has " + std::to_string(m.labels.size()) + " labels but " +
                       m.weights + " has " + std::to_string(m.config.num_classes) + " classes");
  }
  if (before_weights) before_weights(m);

  // Give the parameters their device and dtype first, so that loading converts each tensor into
  // its place and no second full copy of the weights ever exists.
  m.model = Stam(m.config);
  place(m.model, m.device, scalar_type(m.precision.precision));
  if (m.checkpoint)
    load_weights(m.model, *m.checkpoint);
  else
    init_random(m.model, 0);
  m.model->eval();
  m.load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

std::vector<std::string> read_labels_fitting_top_k(ModelOptions& options) {
  std::vector<std::string> labels = read_labels(resolve_labels(options.labels));
  const auto classes = static_cast<int64_t>(labels.size());
  if (options.top_k > classes) {
    spdlog::warn("--top-k {} is more than the {} classes the labels name; using {}", options.top_k,
                 classes, classes);
    options.top_k = classes;
  }
  return labels;
}

}  // namespace stam
