#pragma once
// The options of the commands that read or draw videos and write records (STAM_VIDEO builds):
// declared once here, as options.hpp declares the rest.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "options.hpp"
#include "timeline/timeline.hpp"

namespace stam::cli {

// ---------------------------------------------------------------- windows (timeline, stream)

// --window-seconds, --window-frames, --stride-seconds (its default, in seconds, in the help),
// --fps: the window request of the commands that slide a window along a video. Call it after
// add_model_options: it words --frames as the window's length.
void add_window_options(CLI::App* app, WindowRequest& into, const std::string& stride_default);

// ---------------------------------------------------------------- figures and videos written

// --plot FILE.svg|FILE.png, a figure of the command's results.
CLI::Option* add_plot_option(CLI::App* app, std::string& into, const std::string& help);
// --render OUT.mp4, the input video with the labels drawn on its frames.
CLI::Option* add_render_option(CLI::App* app, std::string& into, const std::string& help);
// The checks of a --plot / --render path before any work: its extension, and that it can be
// written (check_output_path). An empty path (the option not given) passes. Throw UsageError.
void check_plot_path(const std::string& path);
void check_render_path(const std::string& path);

// ---------------------------------------------------------------- records (batch, eval)

// The options batch and eval share to write, continue and split a records file and to feed it.
struct RecordFlags {
  batch::Options opts;
  std::string ext;
  std::string shard;
  // Given at all: an empty value is an error, not the default.
  CLI::Option* ext_given = nullptr;
  CLI::Option* shard_given = nullptr;

  // --ext parsed, or `fallback` when it was not given.
  std::vector<std::string> extensions(const std::vector<std::string>& fallback) const;
  batch::Shard parsed_shard() const;  // all of it when --shard was not given
};
// --ext, with `help`.
void add_ext_option(CLI::App* app, RecordFlags& flags, const std::string& help);
// --resume, --retry-errors, --overwrite, --shard, -b/--batch-size, -j/--decode-workers, worded
// for batch's inputs and output (eval rewords them for its set and records).
void add_record_options(CLI::App* app, RecordFlags& flags);

// -j/--decode-workers (add_record_options has it too).
void add_decode_workers_option(CLI::App* app, int& into);

}  // namespace stam::cli
