// stam: label human actions in videos with STAM, from the shell.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#if STAM_VIDEO
#include <opencv2/core/utils/logger.hpp>
#endif

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "options.hpp"
#include "stam/error.hpp"
#include "suggest.hpp"
#include "version.hpp"

namespace {

// FFmpeg prints its own complaints about damaged streams; stam reports what matters in its own
// words, so FFmpeg is quiet unless -v (errors) or -vv (warnings). OpenCV reads this variable when
// it first opens a video, and a value the user set wins.
#if STAM_VIDEO
void setup_ffmpeg_logging(int verbosity) {
  const char* level = verbosity >= 2 ? "24" : verbosity == 1 ? "16" : "-8";
  ::setenv("OPENCV_FFMPEG_LOGLEVEL", level, /*overwrite=*/0);
}
#endif

void setup_logging(int verbosity, bool quiet) {
#if STAM_VIDEO
  setup_ffmpeg_logging(quiet ? 0 : verbosity);
  // OpenCV's own warnings (an image it cannot open, which stam reports as an error naming the
  // folder) only with -vv.
  cv::utils::logging::setLogLevel(!quiet && verbosity >= 2 ? cv::utils::logging::LOG_LEVEL_WARNING
                                                           : cv::utils::logging::LOG_LEVEL_ERROR);
#endif
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
  std::cerr.flush();
  spdlog::shutdown();
  std::fflush(nullptr);
  std::_Exit(code);
}

// Results go to stdout: a write that failed there (a full disk, a closed stdout) must not end
// with 0 and lose them without a word. Such an output is unusable, as batch's is: exit 2.
int check_stdout(int code) {
  std::cout.flush();
  if (std::fflush(stdout) == 0 && !std::ferror(stdout) && std::cout.good()) return code;
  const int error = errno;
  std::cerr << "stam: cannot write to standard output: " << std::strerror(error) << "\n";
  return code == static_cast<int>(stam::Exit::kInterrupted) ? code
                                                            : static_cast<int>(stam::Exit::kUsage);
}

int finish(int code) {
  return exit_without_teardown(check_stdout(code));
}

// A closed standard stream's descriptor would go to the next file stam opens (a checkpoint, a
// batch output), which writes meant for the stream would then reach. It is taken by /dev/null,
// opened read-only so that writes to a closed stdout still fail and are reported.
void occupy_closed_std_streams() {
  for (int fd = 0; fd <= 2; ++fd)
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      const int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0 && null != fd) {
        ::dup2(null, fd);
        ::close(null);
      }
    }
}

// `stam help [COMMAND]` is `stam [COMMAND] --help`, as git and cargo take it.
std::vector<std::string> arguments(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args.front() == "help") {
    args.erase(args.begin());
    args.push_back("--help");
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  occupy_closed_std_streams();
  // Named, so that help says `stam`, not the path it was started by.
  CLI::App app{"stam: recognise human actions in videos with STAM (Kinetics-400), natively.",
               "stam"};
  app.require_subcommand(1);
  app.fallthrough();  // -v and -q work after the subcommand too
  app.footer(stam::cli::exit_code_help());
  app.set_version_flag("--version", "stam " STAM_VERSION);
  int verbosity = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbosity, "more log detail on stderr (-vv for trace)");
  app.add_flag("-q,--quiet", quiet, "only errors on stderr");

  auto commands = stam::cli::register_commands(app);

  const std::vector<std::string> args = arguments(argc, argv);
  if (args.empty()) {  // what stam does and how to ask, rather than "A subcommand is required"
    std::cerr << app.help();
    return finish(static_cast<int>(stam::Exit::kUsage));
  }
  try {
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));  // CLI11 takes them reversed
  } catch (const CLI::CallForHelp& e) {
    return finish(app.exit(e));
  } catch (const CLI::CallForAllHelp& e) {
    return finish(app.exit(e));
  } catch (const CLI::CallForVersion& e) {
    return finish(app.exit(e));
  } catch (const CLI::ParseError& e) {
    const std::string hint = stam::cli::suggest_fix(app, args);
    if (hint.empty())
      app.exit(e);
    else
      std::cerr << "stam: " << hint << "\n";
    return finish(static_cast<int>(stam::Exit::kUsage));
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
  return finish(code);
}
