#pragma once
// Command-line pieces shared by the subcommands.
#include <CLI/CLI.hpp>

#include <initializer_list>
#include <string>

#include "stam/error.hpp"
#include "stam/pipeline.hpp"

namespace stam::cli {

// Options that choose and run the model; parsed into `opts` after CLI11 has parsed the line
// (call finish_model_options once parsing is done).
struct ModelFlags {
  ModelOptions opts;
  std::string precision = "auto";
  std::string sampling = "uniform";
  std::string seek = "exact";
};

// `clip_sampling`: --sampling and --seek, for commands that sample T frames a video (timeline
// samples at a rate of its own, so it has neither).
void add_model_options(CLI::App* app, ModelFlags& flags, bool clip_sampling = true);
// -k/--top-k, for the commands that report labels.
void add_top_k_option(CLI::App* app, ModelFlags& flags);
// Turns the string flags into enums; throws UsageError.
ModelOptions finish_model_options(const ModelFlags& flags);

// The exit-code table printed in --help footers and README.md: the rows of `codes`, or all of
// them when it is empty.
std::string exit_code_help(std::initializer_list<Exit> codes = {});

}  // namespace stam::cli
