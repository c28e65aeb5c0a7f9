// stam timeline VIDEO: labels along a video, window by window, each sampled frame encoded once.
#include <memory>
#include <utility>

#include "commands.hpp"
#include "decode/decode.hpp"
#include "video_options.hpp"
#include "print.hpp"
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
  std::string render, plot;
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
  // Refused before the model loads, not after the timeline.
  check_render_path(a.render);
  check_plot_path(a.plot);
  const ModelOptions options = finish_model_options(a.model);
  decode_timeout_s();  // a bad $STAM_DECODE_TIMEOUT is a usage error before any work
  const Timeline t = timeline_of(options, a.input, a.window, !a.no_reuse);
  print(a.format, {[&] { return timeline_json(t, a.logits); }, [&] { return timeline_text(t); },
                   [&] { return timeline_csv(t); }});
  // After the timeline's output, which a failure here cannot lose.
  if (!a.plot.empty()) write_timeline_plot(t, a.plot);
  if (!a.render.empty()) render_timeline(t, a.input, a.render);
  return 0;
}

}  // namespace

Command add_timeline(CLI::App& app) {
  auto args = std::make_shared<TimelineArgs>();
  CLI::App* sub = app.add_subcommand(
      "timeline", "label a long video window by window (each frame encoded once)");
  sub->add_option("input", args->input, "video file or frames folder")->required();
  add_model_options(sub, args->model, /*clip_sampling=*/false);
  add_top_k_option(sub, args->model);
  add_window_options(sub, args->window, "2");
  add_format_option(sub, args->format, {"text", "json", "csv"},
                    "text | json | csv (one row per window)");
  add_logits_flag(sub, args->logits, "with --format json: also each window's raw logits");
  sub->add_flag("--no-reuse", args->no_reuse,
                "encode every window's frames again, as classifying each window on its own "
                "would (same output, slower: for comparison)");
  add_plot_option(sub, args->plot,
                  "also draw the leading labels' probabilities against time, over the top-1 "
                  "segments, to FILE.svg or FILE.png");
  add_render_option(sub, args->render,
                    "also write the video with each frame's window labels drawn on it to "
                    "OUT.mp4 (.mkv, .mov, .avi)");
  add_refused_option(sub, "--seek", args->seek);
  add_refused_option(sub, "--sampling", args->sampling);
  sub->footer(exit_code_help(
      {Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kInput, Exit::kModel, Exit::kDevice}));
  return {sub, [args] { return run_timeline_cmd(*args); }};
}

}  // namespace stam::cli
