// stam classify INPUT...: top-k Kinetics-400 labels for videos or frames folders, one result
// each, with the model loaded once.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.hpp"
#include "decode/decode.hpp"
#include "options.hpp"
#include "output.hpp"
#include "pipeline.hpp"
#include "prefetch.hpp"
#include "stam/error.hpp"

namespace stam::cli {

namespace {

struct ClassifyArgs {
  ModelFlags model;
  std::vector<std::string> inputs;
  std::string format = "text";
  bool logits = false;
};

void print_text(const Result& r, bool logits, std::optional<double> load_ms) {
  std::cout << to_text(r, load_ms);
  if (logits) {
    std::cout << "logits:";
    for (float v : r.logits) std::cout << ' ' << v;
    std::cout << '\n';
  }
}

// Why each input cannot be labelled, found without decoding ("" when it may be): reported
// before the model loads, so a typo costs no load.
std::vector<std::string> check_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> problems;
  for (const auto& input : inputs) {
    try {
      check_input(input);
      problems.emplace_back();
    } catch (const InputError& e) {
      spdlog::error("{}", e.what());
      problems.emplace_back(e.what());
    }
  }
  return problems;
}

// Labels every input in turn; one that fails is reported (and, in JSON, gets an error object)
// and the others go on. The model is loaded only when some input passed check_input. The exit
// code is the worst of the inputs'. Decoding runs one input ahead of the model, the first while
// the model loads.
int run_classify(const ClassifyArgs& a) {
  const ModelOptions options = finish_model_options(a.model);
  decode_timeout_s();  // a bad $STAM_DECODE_TIMEOUT is a usage error before any work
  const std::vector<std::string> problems = check_inputs(a.inputs);
  std::vector<std::string> readable;  // the inputs that passed check_input, in order
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (problems[i].empty()) readable.push_back(a.inputs[i]);
  std::unique_ptr<Prefetcher<Clip>> clips;
  std::unique_ptr<Classifier> classifier;
  if (!readable.empty())
    classifier = std::make_unique<Classifier>(
        options, [&](const ClipReader& reader) { clips = prefetch_clips(reader, readable); });
  const bool json = a.format == "json";
  // As jq does: indented for a person at a terminal, one compact line each for a program.
  const int indent = ::isatty(STDOUT_FILENO) ? 2 : -1;
  int worst = 0;
  bool printed = false;  // a text result is out: the next one gets a blank line first
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const std::string& input = a.inputs[i];
    try {
      if (!problems[i].empty()) throw InputError(problems[i]);
      Result r = std::move(classifier->infer({clips->next()}).front());
      if (json) {
        std::cout << dump_json(to_json(r, a.logits), indent) << '\n';
      } else {
        if (printed) std::cout << '\n';
        print_text(r, a.logits, printed ? std::nullopt : std::optional(classifier->load_ms()));
        printed = true;
      }
    } catch (const Error& e) {
      if (problems[i].empty()) spdlog::error("{}", e.what());  // else reported already
      if (json) std::cout << dump_json(error_json(input, e.what()), indent) << '\n';
      worst = std::max(worst, static_cast<int>(e.code()));
    }
    std::cout << std::flush;
  }
  return worst;
}

}  // namespace

Command add_classify(CLI::App& app) {
  auto args = std::make_shared<ClassifyArgs>();
  CLI::App* sub = app.add_subcommand("classify", "label video files or frames folders");
  sub->add_option("input", args->inputs,
                  "video files, or folders of image files (one per frame); each is labelled in "
                  "turn")
      ->required();
  add_model_options(sub, args->model);
  add_top_k_option(sub, args->model);
  sub->add_option("--format", args->format,
                  "text | json (an object per input: indented at a terminal, else one line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  sub->add_flag("--logits", args->logits, "also print the raw logits");
  sub->footer(exit_code_help(
      {Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kInput, Exit::kModel, Exit::kDevice}));
  return {sub, [args] { return run_classify(*args); }};
}

}  // namespace stam::cli
