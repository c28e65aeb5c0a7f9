// Many inputs through one model, in order: checked first, decoded one ahead of the model.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "device.hpp"
#include "pipeline/pipeline.hpp"
#include "stam/error.hpp"

namespace stam {

std::unique_ptr<Prefetcher<Clip>> prefetch_clips(const ClipReader& reader,
                                                 std::vector<std::string> inputs) {
  const size_t count = inputs.size();
  return std::make_unique<Prefetcher<Clip>>(count, [reader, inputs = std::move(inputs)](size_t i) {
    lower_thread_priority();  // the prefetch thread's own; the same on every call
    DecodeLease lease;
    return reader.read(inputs[i]);
  });
}

CheckedInputs check_inputs(const std::vector<std::string>& inputs) {
  CheckedInputs checked;
  for (const auto& input : inputs) {
    try {
      check_clip_input(input);
      checked.problems.emplace_back();
      checked.readable.push_back(input);
    } catch (const InputError& e) {
      spdlog::error("{}", e.what());
      checked.problems.emplace_back(e.what());
    }
  }
  return checked;
}

int classify_each(const ModelOptions& options, const std::vector<std::string>& inputs,
                  const OutcomeSink& done) {
  const CheckedInputs checked = check_inputs(inputs);
  const std::vector<std::string>& problems = checked.problems;
  std::unique_ptr<Prefetcher<Clip>> clips;
  std::unique_ptr<Classifier> classifier;
  if (!checked.readable.empty())
    classifier = std::make_unique<Classifier>(options, [&](const ClipReader& reader) {
      clips = prefetch_clips(reader, checked.readable);
    });
  int worst = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Outcome outcome{inputs[i], std::nullopt, problems[i], 0};
    try {
      if (!problems[i].empty()) throw InputError(problems[i]);
      outcome.result = std::move(classifier->infer({clips->next()}).front());
    } catch (const Error& e) {
      if (problems[i].empty()) spdlog::error("{}", e.what());  // else reported already
      outcome.error = e.what();
      outcome.exit_code = static_cast<int>(e.code());
      worst = std::max(worst, outcome.exit_code);
    }
    done(outcome, classifier.get());
  }
  return worst;
}

}  // namespace stam
