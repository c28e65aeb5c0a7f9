#pragma once
// Every command-line option is declared here once: its names, help, check and default. A command
// composes the ones it takes, in the order its --help lists them, and maps their values to the
// library's options. Where a command gives an option a meaning of its own, it says so in a
// description of its own (CLI::Option::description) rather than a second declaration.
#include <CLI/CLI.hpp>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/pipeline.hpp"
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

// A whole number from `lo` to `hi`, for count options. CLI11's Range calls a word "not in range";
// this says it is not a number.
CLI::Validator whole_number(long lo, long hi);
// A path option given as "" names no file; without this check it meant the default path.
extern const CLI::Validator non_empty;

// ---------------------------------------------------------------- the model

// -w/--weights, -f/--frames, --device, --precision, -t/--threads, then (`clip_sampling`: for the
// commands that sample T frames a video; timeline samples at a rate of its own) --sampling and
// --seek, then (`labels`: for the commands that name classes, not embed) --labels.
void add_model_options(CLI::App* app, ModelFlags& flags, bool clip_sampling = true,
                       bool labels = true);
// The pieces of add_model_options, for a command that takes only some of them (bench, info).
CLI::Option* add_weights_option(CLI::App* app, std::string& into);
CLI::Option* add_device_option(CLI::App* app, std::string& into);
CLI::Option* add_precision_option(CLI::App* app, std::string& into);
CLI::Option* add_threads_option(CLI::App* app, int& into);
// -k/--top-k, for the commands that report labels.
void add_top_k_option(CLI::App* app, ModelFlags& flags);
// Turns the string flags into enums; throws UsageError.
ModelOptions finish_model_options(const ModelFlags& flags);

// ---------------------------------------------------------------- what a command writes

// --format, one of `choices`; `show_default`: the help shows the default (batch's has none: the
// output's extension chooses).
CLI::Option* add_format_option(CLI::App* app, std::string& into,
                               const std::vector<std::string>& choices, const std::string& help,
                               bool show_default = true);
CLI::Option* add_logits_flag(CLI::App* app, bool& into, const std::string& help);

// ---------------------------------------------------------------- help

// An option a command takes only to refuse it with the reason it does not apply there (rather
// than CLI11's "unknown option"): hidden from --help, its value stored in `into` for the command
// to check.
void add_refused_option(CLI::App* app, const std::string& name, std::string& into);

// The exit-code table printed in --help footers and README.md: the rows of `codes`, or all of
// them when it is empty; `meanings` replaces the general wording of some rows for one command.
std::string exit_code_help(std::initializer_list<Exit> codes = {},
                           std::initializer_list<std::pair<Exit, const char*>> meanings = {});

}  // namespace stam::cli
