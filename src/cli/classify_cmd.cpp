// stam classify INPUT...: top-k Kinetics-400 labels for videos or frames folders, one result
// each, with the model loaded once.
#include <iostream>
#include <memory>
#include <optional>

#include "commands.hpp"
#if STAM_VIDEO
#include "decode/decode.hpp"
#endif
#include "options.hpp"
#include "output.hpp"
#include "pipeline/pipeline.hpp"
#include "print.hpp"

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
  std::cout << std::flush;
}

// Each input's result as it comes (the work is classify_each's); in JSON a failed input gets an
// error object. The exit code is the worst of the inputs'.
int run_classify(const ClassifyArgs& a) {
  const ModelOptions options = finish_model_options(a.model);
#if STAM_VIDEO
  decode_timeout_s();    // a bad $STAM_DECODE_TIMEOUT is a usage error before any work
#endif
  bool printed = false;  // a text result is out: the next one gets a blank line first
  return classify_each(options, a.inputs, [&](const Outcome& o, const Classifier* classifier) {
    if (a.format == "json") {
      print_json(o.result ? to_json(*o.result, a.logits) : error_json(o.input, o.error));
    } else if (o.result) {
      if (printed) std::cout << '\n';
      print_text(*o.result, a.logits,
                 printed ? std::nullopt : std::optional(classifier->load_ms()));
      printed = true;
    }
  });
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
  add_format_option(sub, args->format, {"text", "json"},
                    "text | json (an object per input: indented at a terminal, else one line)");
  add_logits_flag(sub, args->logits, "also print the raw logits");
  sub->footer(exit_code_help(
      {Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kInput, Exit::kModel, Exit::kDevice}));
  return {sub, [args] { return run_classify(*args); }};
}

}  // namespace stam::cli
