// stam classify INPUT: top-k Kinetics-400 labels for one video or frames folder.
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>

#include "commands.hpp"
#include "options.hpp"
#include "stam/output.hpp"
#include "stam/pipeline.hpp"

namespace stam::cli {

namespace {

struct ClassifyArgs {
  ModelFlags model;
  std::string input;
  std::string format = "text";
  bool logits = false;
};

int run_classify(const ClassifyArgs& a) {
  Classifier classifier(finish_model_options(a.model));
  Result r = classifier.classify(a.input);
  if (a.format == "json") {
    std::cout << to_json(r, a.logits).dump(2) << std::endl;
  } else {
    std::cout << to_text(r);
    if (a.logits) {
      std::cout << "logits:";
      for (float v : r.logits) std::cout << ' ' << v;
      std::cout << '\n';
    }
    std::cout << std::flush;
  }
  return 0;
}

}  // namespace

Command add_classify(CLI::App& app) {
  auto args = std::make_shared<ClassifyArgs>();
  CLI::App* sub = app.add_subcommand("classify", "label one video file or frames folder");
  sub->add_option("input", args->input, "video file, or a folder of image files (one per frame)")
      ->required();
  add_model_options(sub, args->model);
  sub->add_option("--format", args->format, "text | json (one object on stdout)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  sub->add_flag("--logits", args->logits, "also print the raw logits");
  sub->footer(exit_code_help());
  return {sub, [args] { return run_classify(*args); }};
}

}  // namespace stam::cli
