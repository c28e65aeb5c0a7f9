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

int run_info(const std::string& weights_flag) {
  std::string path = weights_flag.empty() ? find_model_file("stam_16.pth") : weights_flag;
  if (path.empty()) throw ModelError("no --weights given and models/stam_16.pth not found");
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
  auto weights = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("info", "describe and fully load a checkpoint");
  sub->add_option("-w,--weights", *weights, "checkpoint (default: models/stam_16.pth)");
  sub->footer(exit_code_help());
  return {sub, [weights] { return run_info(*weights); }};
}

}  // namespace stam::cli
