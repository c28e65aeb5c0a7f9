// stam serve: an HTTP server that labels uploaded videos with one model, loaded once; it runs
// until SIGINT/SIGTERM, then answers the requests in progress and exits 0.
#include <spdlog/spdlog.h>

#include <csignal>
#include <ctime>
#include <memory>

#include "commands.hpp"
#include "video_options.hpp"
#include "serve/server.hpp"

namespace stam::cli {

namespace {

struct ServeArgs {
  ModelFlags model;
  serve::ServeOptions opts;
  size_t max_upload_mb = 512;
};

// SIGINT and SIGTERM blocked in every thread (the server's inherit the mask), so that this
// thread alone takes them, with sigtimedwait.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int run_serve(ServeArgs& a) {
  const ModelOptions options = finish_model_options(a.model);
  a.opts.max_upload_bytes = a.max_upload_mb << 20;
  const sigset_t signals = block_stop_signals();
  serve::Server server(options, a.opts);
  server.start();
  const timespec tick{0, 200'000'000};
  for (;;) {
    if (sigtimedwait(&signals, nullptr, &tick) > 0) break;
    if (auto error = server.load_error()) {
      server.stop();
      std::rethrow_exception(error);
    }
  }
  spdlog::info("stopping: answering the requests in progress");
  server.stop();
  return 0;
}

}  // namespace

Command add_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "label videos sent over HTTP (POST /v1/classify)");
  sub->add_option("--host", args->opts.host, "address to listen on")->capture_default_str();
  sub->add_option("--port", args->opts.port, "port to listen on (0 = a free one)")
      ->check(whole_number(0, 65535))
      ->capture_default_str();
  add_model_options(sub, args->model);
  add_top_k_option(sub, args->model);
  sub->add_option("--max-upload-mb", args->max_upload_mb, "largest body taken, in MiB (else 413)")
      ->check(whole_number(1, 1 << 20))
      ->capture_default_str();
  sub->add_option("--queue", args->opts.queue,
                  "requests in progress at most (else 503; each has an HTTP thread)")
      ->check(whole_number(1, 1024))
      ->capture_default_str();
  sub->add_option("--max-batch", args->opts.max_batch, "clips per model forward at most")
      ->check(whole_number(1, 4096))
      ->capture_default_str();
  add_decode_workers_option(sub, args->opts.decode_workers);
  sub->add_option("--api-key", args->opts.api_key,
                  "ask every request but /health for this key (Authorization: Bearer or "
                  "X-API-Key)");
  sub->add_option("--allow-dir", args->opts.allow_dir,
                  "take JSON {\"path\": ...} requests for files under this folder");
  sub->footer(
      exit_code_help({Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kModel, Exit::kDevice}));
  return {sub, [args] { return run_serve(*args); }};
}

}  // namespace stam::cli
