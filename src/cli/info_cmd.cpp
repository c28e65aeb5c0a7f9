// stam info: what a checkpoint holds and what this machine runs it with. Also the check that a
// download loads.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "commands.hpp"
#include "info.hpp"
#include "options.hpp"
#include "output.hpp"
#include "stam/error.hpp"

namespace stam::cli {

namespace {

struct InfoArgs {
  std::string positional;  // stam info PATH
  std::string weights;     // stam info --weights PATH, as in the other commands
  std::string format = "text";
};

int run_info(const InfoArgs& a) {
  if (!a.positional.empty() && !a.weights.empty() && a.positional != a.weights)
    throw UsageError("give the checkpoint once: as PATH or as --weights, not both");
  const nlohmann::ordered_json info =
      describe_checkpoint(a.positional.empty() ? a.weights : a.positional);
  if (a.format == "json")  // as classify's: indented at a terminal, one line for a program
    std::cout << dump_json(info, ::isatty(STDOUT_FILENO) ? 2 : -1) << "\n";
  else
    std::cout << info_text(info);
  return 0;
}

}  // namespace

Command add_info(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* sub = app.add_subcommand(
      "info", "describe and fully load a checkpoint; the device, CPU and libraries it runs on");
  sub->add_option("path", args->positional, "checkpoint (default: models/stam_16.pth)")
      ->check(non_empty);
  sub->add_option("-w,--weights", args->weights, "the same, as in the other commands")
      ->check(non_empty);
  sub->add_option("--format", args->format, "text | json (indented at a terminal, else one line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  sub->footer(exit_code_help(
      {Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kModel},
      {{Exit::kModel, "model error (checkpoint missing, corrupt, not STAM's or not finite)"}}));
  return {sub, [args] { return run_info(*args); }};
}

}  // namespace stam::cli
