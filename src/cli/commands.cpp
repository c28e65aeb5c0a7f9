#include "commands.hpp"

#include "stam/error.hpp"

namespace stam::cli {

int Commands::run() const {
  for (const auto& c : list_)
    if (c.app->parsed()) return c.run();
  throw UsageError("no subcommand given (see stam --help)");
}

Commands register_commands(CLI::App& app) {
  Commands cmds;
  cmds.add(add_classify(app));
  cmds.add(add_info(app));
#if STAM_VIDEO
  cmds.add(add_batch(app));
#endif
  cmds.add(add_bench(app));
#if STAM_VIDEO  // the commands that read videos or write records
  cmds.add(add_eval(app));
  cmds.add(add_timeline(app));
  cmds.add(add_embed(app));
  cmds.add(add_stream(app));
  cmds.add(add_serve(app));
#endif
  return cmds;
}

}  // namespace stam::cli
