// stam info: what a checkpoint holds, without running it. Also the check that a download loads.
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>

#include "commands.hpp"
#include "options.hpp"
#include "stam/checkpoint.hpp"
#include "stam/error.hpp"
#include "stam/model.hpp"
#include "stam/pipeline.hpp"

namespace stam::cli {

namespace {

struct InfoArgs {
  std::string positional;  // stam info PATH
  std::string weights;     // stam info --weights PATH, as in the other commands
};

int run_info(const InfoArgs& a) {
  if (!a.positional.empty() && !a.weights.empty() && a.positional != a.weights)
    throw UsageError("give the checkpoint once: as PATH or as --weights, not both");
  const std::string path = resolve_weights(a.positional.empty() ? a.weights : a.positional);
  Checkpoint ckpt = Checkpoint::open(path);
  StamConfig cfg = StamConfig::from_checkpoint(ckpt);
  // Build on the meta-free CPU path and load for real: this proves every tensor is readable.
  Stam model(cfg);
  load_weights(model, ckpt);
  std::cout << "file:       " << path << "\n"
            << "format:     " << ckpt.format() << " (state dict at "
            << (ckpt.location().empty() ? "top level" : "'" + ckpt.location() + "'") << ")\n"
            << "tensors:    " << ckpt.entries().size() << "\n"
            << "parameters: " << count_parameters(model) << "\n"
            << "model:      " << cfg.describe() << "\n";
  return 0;
}

}  // namespace

Command add_info(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* sub = app.add_subcommand("info", "describe and fully load a checkpoint");
  sub->add_option("path", args->positional, "checkpoint (default: models/stam_16.pth)");
  sub->add_option("-w,--weights", args->weights, "the same, as in the other commands");
  sub->footer(exit_code_help({Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kModel}));
  return {sub, [args] { return run_info(*args); }};
}

}  // namespace stam::cli
