#pragma once
// Each subcommand registers its options on the app and returns how to run it once parsed.
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace stam::cli {

// A registered subcommand: its CLI11 node and the action to run when it was chosen.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// Adds one subcommand; its option storage lives inside the returned closure's captures.
Command add_classify(CLI::App& app);
Command add_info(CLI::App& app);
Command add_batch(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_timeline(CLI::App& app);
Command add_embed(CLI::App& app);
Command add_stream(CLI::App& app);
Command add_serve(CLI::App& app);

class Commands {
 public:
  void add(Command c) { list_.push_back(std::move(c)); }
  // Runs the chosen subcommand; returns its exit code.
  int run() const;

 private:
  std::vector<Command> list_;
};

Commands register_commands(CLI::App& app);

}  // namespace stam::cli
