// stam stream SOURCE: live labels over a rolling window, one line per window as it is run.
#include <memory>

#include "batch/batch.hpp"
#include "commands.hpp"
#include "decode/decode.hpp"
#include "video_options.hpp"
#include "output.hpp"
#include "print.hpp"
#include "stream/stream.hpp"

namespace stam::cli {

namespace {

struct StreamArgs {
  ModelFlags model;
  std::string source;
  WindowRequest window;
  stream::StreamOptions opts;
  std::string format = "text";
  bool logits = false;
};

const char kStopAnnouncement[] =
    "\nstopping: the last window follows (send again to quit at once)\n";

int run_stream_cmd(StreamArgs& a) {
  if (a.logits && a.format != "jsonl")
    throw UsageError("--logits needs --format jsonl: the text lines have no place for them");
  check_render_path(a.opts.render);  // refused before the model loads
  const ModelOptions options = finish_model_options(a.model);
  batch::SignalGuard signals(kStopAnnouncement);
  a.opts.stop = batch::stop_requested;
  const bool jsonl = a.format == "jsonl";
  stream::stream_of(options, a.source, a.window, a.opts, [&](const stream::StreamWindow& w) {
    print_line(jsonl ? dump_json(stream::window_json(w, a.logits)) : stream::window_text(w));
  });
  return 0;
}

}  // namespace

Command add_stream(CLI::App& app) {
  auto args = std::make_shared<StreamArgs>();
  CLI::App* sub = app.add_subcommand(
      "stream", "label a live source (camera, URL, stdin) or a file over a rolling window");
  sub->add_option("source", args->source,
                  "video file, - (standard input), a URL (rtsp://, http://, tcp://, udp://...) or "
                  "a camera (/dev/video0, or its index 0)")
      ->required();
  add_model_options(sub, args->model, /*clip_sampling=*/false);
  add_top_k_option(sub, args->model);
  add_window_options(sub, args->window, "1");
  add_format_option(sub, args->format, {"text", "jsonl"},
                    "text | jsonl (one JSON object per window, flushed at once)");
  add_logits_flag(sub, args->logits, "with --format jsonl: also each window's raw logits");
  sub->add_option("--average", args->opts.average,
                  "report the mean scores of the last N windows (smoothing)")
      ->check(whole_number(1, 1000))
      ->capture_default_str();
  sub->add_option("--threshold", args->opts.threshold,
                  "leave out labels scoring below P (after --average)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  add_render_option(sub, args->opts.render,
                    "also write every source frame with the latest window's labels drawn on it "
                    "to OUT.mp4 (.mkv, .mov, .avi), at the source's rate");
  sub->add_flag("--realtime", args->opts.realtime,
                "read a file at its own frame rate, as a live source (samples dropped when the "
                "model lags); without it a file is read as fast as the model goes");
  sub->add_flag("--reconnect", args->opts.reconnect,
                "when a live source cannot be opened or ends, open it again (waiting 0.5 s, "
                "doubling to 10 s) until SIGINT/SIGTERM");
  sub->add_option("--timeout-seconds", args->opts.timeout_s,
                  "give up opening the source, or waiting for its next frame, after this long")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  sub->footer(
      "SIGINT (Ctrl-C) or SIGTERM stops reading; the window of what was read is written and stam "
      "exits with 0 (a second signal quits at once with 130). A live source that ends, without "
      "--reconnect, ends the run the same way.\n\n" +
      exit_code_help({Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kInput, Exit::kModel,
                      Exit::kDevice, Exit::kInterrupted},
                     {{Exit::kOk,
                       "success, also when stopped by SIGINT/SIGTERM or when the "
                       "source ended"},
                      {Exit::kInput,
                       "input error (the source cannot be opened, or gave no "
                       "decodable frame)"},
                      {Exit::kInterrupted, "a second SIGINT/SIGTERM while stopping"}}));
  return {sub, [args] { return run_stream_cmd(*args); }};
}

}  // namespace stam::cli
