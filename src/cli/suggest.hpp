#pragma once
// "Did you mean" hints for a command line CLI11 refused.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace stam::cli {

// Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`.
size_t edit_distance(const std::string& a, const std::string& b);

// The first unknown subcommand or option in `args` (argv without the program name), e.g.
// "unknown option '--frame'; did you mean '--frames'?", or "" when every name is known (the
// mistake is elsewhere: let CLI11 explain it). Finding the unknown name first also keeps
// `--frame 8 v.mp4` from being explained as a strange input "8".
std::string suggest_fix(const CLI::App& app, const std::vector<std::string>& args);

}  // namespace stam::cli
