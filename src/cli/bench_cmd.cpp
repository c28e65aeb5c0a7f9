// stam bench: model latency against frames per video, no weights needed.
#include <spdlog/spdlog.h>

#include <memory>

#include "bench/bench.hpp"
#include "commands.hpp"
#include "options.hpp"
#if STAM_VIDEO
#include "video_options.hpp"
#endif
#include "output.hpp"
#include "print.hpp"

namespace stam::cli {

namespace {

struct BenchArgs {
  BenchOptions opts;
  std::string frames = "4,8,16,32,64";
  std::string precision = "auto";
  std::string format = "text";
  std::string plot;
};

int run_bench_command(BenchArgs& a) {
#if STAM_VIDEO
  check_plot_path(a.plot);  // refused before the benchmark, not after it
#endif
  a.opts.frames = parse_frame_list(a.frames);
  a.opts.precision = parse_precision(a.precision);
  const BenchReport report = run_bench(a.opts, [](const BenchRow& row) {
    spdlog::info("{} frames: median {:.1f} ms ({:.0f} GFLOP/s, {:.0f}% of the floor)", row.frames,
                 row.median_ms, row.gflop_per_s, 100.0 * row.floor_ms / row.median_ms);
  });
  print(a.format, {[&] { return bench_json(report); }, [&] { return bench_text(report); },
                   [&] { return bench_csv(report); }});
#if STAM_VIDEO
  if (!a.plot.empty()) write_bench_plot(report, a.plot);  // after the figures, which it cannot lose
#endif
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand(
      "bench", "model latency against frames per video on this machine (no weights needed)");
  sub->add_option("--frames", a->frames, "frame counts to time, comma-separated")
      ->capture_default_str();
  sub->add_option("--iters", a->opts.iters, "timed forwards per frame count")
      ->check(whole_number(1, 100000))
      ->capture_default_str();
  sub->add_option("--warmup", a->opts.warmup, "untimed forwards first")
      ->check(whole_number(0, 100000))
      ->capture_default_str();
  sub->add_option("--batch", a->opts.batch, "videos per forward")
      ->check(whole_number(1, 4096))
      ->capture_default_str();
  add_weights_option(sub, a->opts.weights)
      ->description("checkpoint to time (default: STAM-16's architecture, random weights)");
  sub->add_option(
         "--video", a->opts.video,
         "also time reading this file (decoding, preprocessing), alone and beside the model as "
         "classify and batch read the next video")
      ->check(non_empty);
  add_device_option(sub, a->opts.device);
  add_precision_option(sub, a->precision);
  add_threads_option(sub, a->opts.threads);
  add_format_option(sub, a->format, {"text", "json", "csv"}, "text | json | csv");
#if STAM_VIDEO  // figures are drawn with OpenCV
  add_plot_option(sub, a->plot,
                  "also draw latency and videos/s against frames, with STAM's published "
                  "top-1, to FILE.svg or FILE.png");
#endif
  sub->footer(exit_code_help(
      {Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kInput, Exit::kModel, Exit::kDevice}));
  return {sub, [a] { return run_bench_command(*a); }};
}

}  // namespace stam::cli
