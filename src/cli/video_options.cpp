#include "video_options.hpp"

#include "output.hpp"
#include "render/canvas.hpp"
#include "render/overlay.hpp"

namespace stam::cli {

void add_window_options(CLI::App* app, WindowRequest& into, const std::string& stride_default) {
  app->get_option("--frames")
      ->description(
          "window length in sampled frames, as --window-frames (default: the checkpoint's T)");
  app->add_option("--window-seconds", into.window_seconds,
                  "window length in seconds (default 10; with the frames it sets --fps, with "
                  "--fps it sets the frames)");
  app->add_option("--window-frames", into.window_frames,
                  "window length in sampled frames (default: the checkpoint's T)");
  app->add_option(
      "--stride-seconds", into.stride_seconds,
      "time between window starts (default " + stride_default + "), rounded to whole samples");
  app->add_option("--fps", into.fps,
                  "frames sampled per second (default: T per window, 1.6 for STAM-16 over 10 s)");
}

CLI::Option* add_plot_option(CLI::App* app, std::string& into, const std::string& help) {
  return app->add_option("--plot", into, help);
}

void check_plot_path(const std::string& path) {
  if (path.empty()) return;
  check_plot_name(path);
  check_output_path(path, "--plot");
}

void check_render_path(const std::string& path) {
  if (path.empty()) return;
  check_video_name(path, "--render");
  check_output_path(path, "--render");
}

CLI::Option* add_render_option(CLI::App* app, std::string& into, const std::string& help) {
  return app->add_option("--render", into, help)->check(non_empty);
}

std::vector<std::string> RecordFlags::extensions(const std::vector<std::string>& fallback) const {
  return ext_given->count() > 0 ? batch::parse_extensions(ext) : fallback;
}

batch::Shard RecordFlags::parsed_shard() const {
  return shard_given->count() > 0 ? batch::parse_shard(shard) : batch::Shard{};
}

void add_ext_option(CLI::App* app, RecordFlags& f, const std::string& help) {
  f.ext_given = app->add_option("--ext", f.ext, help);
}

void add_record_options(CLI::App* app, RecordFlags& f) {
  batch::Options& o = f.opts;
  app->add_flag("--resume", o.resume, "continue an existing output: skip inputs it records");
  app->add_flag("--retry-errors", o.retry_errors,
                "with --resume (implied), redo inputs whose record is an error");
  app->add_flag("--overwrite", o.overwrite, "replace an existing non-empty output");
  f.shard_given =
      app->add_option("--shard", f.shard, "K/N: only the K-th (from 0) of N parts of the inputs");
  app->add_option("-b,--batch-size", o.batch_size, "videos per model call")
      ->check(whole_number(1, 4096))
      ->capture_default_str();
  add_decode_workers_option(app, o.decode_workers);
}

void add_decode_workers_option(CLI::App* app, int& into) {
  app->add_option("-j,--decode-workers", into, "decoding threads (0 = automatic)")
      ->check(whole_number(0, 256))
      ->capture_default_str();
}

}  // namespace stam::cli
