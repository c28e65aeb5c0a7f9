#pragma once
// Command-line pieces shared by the subcommands.
#include <CLI/CLI.hpp>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "pipeline.hpp"
#include "stam/error.hpp"

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
// samples at a rate of its own, so it has neither). `labels`: --labels, for the commands that
// name classes (not embed).
void add_model_options(CLI::App* app, ModelFlags& flags, bool clip_sampling = true,
                       bool labels = true);
// A whole number from `lo` to `hi`, for count options. CLI11's Range calls a word "not in range";
// this says it is not a number.
CLI::Validator whole_number(long lo, long hi);
// A path option given as "" names no file; without this check it meant the default path.
extern const CLI::Validator non_empty;
// -k/--top-k, for the commands that report labels.
void add_top_k_option(CLI::App* app, ModelFlags& flags);
// The labels `model` names, read; a --top-k beyond their class count (every class in the top k:
// empty CSV columns in batch, 100 % top-k in eval) is lowered to it, with a warning.
std::vector<std::string> read_labels_fitting_top_k(ModelOptions& model);
// Turns the string flags into enums; throws UsageError.
ModelOptions finish_model_options(const ModelFlags& flags);

// An option a command takes only to refuse it with the reason it does not apply there (rather
// than CLI11's "unknown option"): hidden from --help, its value stored in `into` for the command
// to check.
void add_refused_option(CLI::App* app, const std::string& name, std::string& into);

// The exit-code table printed in --help footers and README.md: the rows of `codes`, or all of
// them when it is empty; `meanings` replaces the general wording of some rows for one command.
std::string exit_code_help(std::initializer_list<Exit> codes = {},
                           std::initializer_list<std::pair<Exit, const char*>> meanings = {});

}  // namespace stam::cli
