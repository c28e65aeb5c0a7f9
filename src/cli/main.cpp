// stam: label human actions in videos with STAM, from the shell.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <opencv2/core/utils/logger.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "commands.hpp"
#include "options.hpp"
#include "stam/error.hpp"
#include "suggest.hpp"

namespace {

// FFmpeg prints its own complaints about damaged streams; stam reports what matters in its own
// words, so FFmpeg is quiet unless -v (errors) or -vv (warnings). OpenCV reads this variable when
// it first opens a video, and a value the user set wins.
void setup_ffmpeg_logging(int verbosity) {
  const char* level = verbosity >= 2 ? "24" : verbosity == 1 ? "16" : "-8";
  ::setenv("OPENCV_FFMPEG_LOGLEVEL", level, /*overwrite=*/0);
}

void setup_logging(int verbosity, bool quiet) {
  setup_ffmpeg_logging(quiet ? 0 : verbosity);
  // OpenCV's own warnings (an image it cannot open, which stam reports as an error naming the
  // folder) only with -vv.
  cv::utils::logging::setLogLevel(!quiet && verbosity >= 2 ? cv::utils::logging::LOG_LEVEL_WARNING
                                                           : cv::utils::logging::LOG_LEVEL_ERROR);
  auto logger = spdlog::stderr_color_mt("stam");
  logger->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
  if (quiet)
    spdlog::set_level(spdlog::level::err);
  else if (verbosity >= 2)
    spdlog::set_level(spdlog::level::trace);
  else if (verbosity == 1)
    spdlog::set_level(spdlog::level::debug);
  else
    spdlog::set_level(spdlog::level::info);
}

// The command's work is done and its output written: flush what is buffered and leave without
// running the static destructors of the ~290 libraries LibTorch loads (tens of milliseconds of
// freeing memory the kernel reclaims anyway). Sanitized builds exit normally, so that
// LeakSanitizer still checks for leaks at exit.
int exit_without_teardown(int code) {
#if defined(__SANITIZE_ADDRESS__)
  return code;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return code;
#endif
#endif
  std::cout.flush();
  std::cerr.flush();
  spdlog::shutdown();
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"stam: recognise human actions in videos with STAM (Kinetics-400), natively."};
  app.require_subcommand(1);
  app.fallthrough();  // -v and -q work after the subcommand too
  app.footer(stam::cli::exit_code_help());
  app.set_version_flag("--version", "stam 0.1.0");
  int verbosity = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbosity, "more log detail on stderr (-vv for trace)");
  app.add_flag("-q,--quiet", quiet, "only errors on stderr");

  auto commands = stam::cli::register_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::string hint =
        stam::cli::suggest_fix(app, std::vector<std::string>(argv + 1, argv + argc));
    if (hint.empty())
      app.exit(e);
    else
      std::cerr << "stam: " << hint << "\n";
    return static_cast<int>(stam::Exit::kUsage);
  }

  setup_logging(verbosity, quiet);
  int code;
  try {
    code = commands.run();
  } catch (const stam::Error& e) {
    spdlog::error("{}", e.what());
    code = static_cast<int>(e.code());
  } catch (const std::exception& e) {
    spdlog::critical("internal error: {}", e.what());
    code = static_cast<int>(stam::Exit::kInternal);
  }
  return exit_without_teardown(code);
}
