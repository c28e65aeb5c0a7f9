// stam timeline VIDEO: labels along a video, window by window, each sampled frame encoded once.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <utility>

#include "commands.hpp"
#include "decode/decode.hpp"
#include "options.hpp"
#include "output.hpp"
#include "timeline/timeline.hpp"

namespace stam::cli {

namespace {

struct TimelineArgs {
  ModelFlags model;
  std::string input;
  WindowRequest window;
  std::string format = "text";
  bool logits = false;
  bool no_reuse = false;
  // classify's clip sampling flags, taken only to say why they do not apply here.
  std::string seek, sampling;
};

int run_timeline_cmd(const TimelineArgs& a) {
  for (const auto& [flag, value] : {std::pair{"--seek", &a.seek}, {"--sampling", &a.sampling}}) {
    if (!value->empty())
      throw UsageError(std::string(flag) +
                       " does not apply to timeline: it reads the whole video " +
                       "in order and samples it at --fps (see --window-seconds, --stride-seconds)");
  }
  if (a.logits && a.format != "json")
    throw UsageError("--logits needs --format json: the " + a.format +
                     " output has no place for each window's logits");
  ModelOptions opts = finish_model_options(a.model);
  // What can be refused without the model is refused before it loads.
  decode_timeout_s();
  check_input(a.input);
  if (const auto t = requested_window_frames(a.window)) {
    if (opts.frames > 0 && opts.frames != *t)
      throw UsageError("--frames " + std::to_string(opts.frames) + " contradicts the window of " +
                       std::to_string(*t) + " frames; give one of them");
    opts.frames = *t;
  }
  Classifier classifier(opts);
  const WindowPlan plan = resolve_window(a.window, classifier.config().frames);
  const Timeline t = run_timeline(classifier, a.input, plan, !a.no_reuse);
  if (a.format == "json")
    std::cout << dump_json(timeline_json(t, a.logits), ::isatty(STDOUT_FILENO) ? 2 : -1) << '\n';
  else if (a.format == "csv")
    std::cout << timeline_csv(t);
  else
    std::cout << timeline_text(t);
  return 0;
}

}  // namespace

Command add_timeline(CLI::App& app) {
  auto args = std::make_shared<TimelineArgs>();
  CLI::App* sub = app.add_subcommand(
      "timeline", "label a long video window by window (each frame encoded once)");
  sub->add_option("input", args->input, "video file or frames folder")->required();
  add_model_options(sub, args->model, /*clip_sampling=*/false);
  sub->get_option("--frames")
      ->description(
          "window length in sampled frames, as --window-frames (default: the "
          "checkpoint's T)");
  add_top_k_option(sub, args->model);
  sub->add_option("--window-seconds", args->window.window_seconds,
                  "window length in seconds (default 10; with the frames it sets --fps, with "
                  "--fps it sets the frames)");
  sub->add_option("--window-frames", args->window.window_frames,
                  "window length in sampled frames (default: the checkpoint's T)");
  sub->add_option("--stride-seconds", args->window.stride_seconds,
                  "time between window starts (default 2), rounded to whole samples");
  sub->add_option("--fps", args->window.fps,
                  "frames sampled per second (default: T per window, 1.6 for STAM-16 over 10 s)");
  sub->add_option("--format", args->format, "text | json | csv (one row per window)")
      ->check(CLI::IsMember({"text", "json", "csv"}))
      ->capture_default_str();
  sub->add_flag("--logits", args->logits, "with --format json: also each window's raw logits");
  sub->add_flag("--no-reuse", args->no_reuse,
                "encode every window's frames again, as classifying each window on its own "
                "would (same output, slower: for comparison)");
  add_refused_option(sub, "--seek", args->seek);
  add_refused_option(sub, "--sampling", args->sampling);
  sub->footer(exit_code_help(
      {Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kInput, Exit::kModel, Exit::kDevice}));
  return {sub, [args] { return run_timeline_cmd(*args); }};
}

}  // namespace stam::cli
