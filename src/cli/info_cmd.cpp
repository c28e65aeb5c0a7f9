// stam info: what a checkpoint holds and what this machine runs it with. Also the check that a
// download loads.
#include <memory>

#include "commands.hpp"
#include "info.hpp"
#include "options.hpp"
#include "print.hpp"

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
  print(a.format, {[&] { return info; }, [&] { return info_text(info); }, {}});
  return 0;
}

}  // namespace

Command add_info(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* sub = app.add_subcommand(
      "info", "describe and fully load a checkpoint; the device, CPU and libraries it runs on");
  sub->add_option("path", args->positional, "checkpoint (default: models/stam_16.pth)")
      ->check(non_empty);
  add_weights_option(sub, args->weights)->description("the same, as in the other commands");
  add_format_option(sub, args->format, {"text", "json"},
                    "text | json (indented at a terminal, else one line)");
  sub->footer(exit_code_help(
      {Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kModel},
      {{Exit::kModel, "model error (checkpoint missing, corrupt, not STAM's or not finite)"}}));
  return {sub, [args] { return run_info(*args); }};
}

}  // namespace stam::cli
