// Progress of a batch run on stderr: a redrawn bar on a terminal, a periodic plain line in logs.
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "batch/batch.hpp"
#include "output.hpp"

namespace stam::batch {

namespace {

constexpr int kBarWidth = 24;
constexpr double kRedrawEvery = 0.1;  // a terminal does not need more than ~10 frames a second

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

std::string Progress::format(int64_t done, int64_t total, int64_t failed, double elapsed_s,
                             int width, const std::string& current) {
  std::string line;
  if (width > 0) {
    const int filled = total > 0 ? static_cast<int>(width * done / total) : width;
    line = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]  ";
  }
  const double rate = elapsed_s > 0 ? done / elapsed_s : 0;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%lld/%lld  %.2f videos/s  ETA %s", static_cast<long long>(done),
                static_cast<long long>(total), rate,
                rate > 0 ? format_duration((total - done) / rate).c_str() : "?");
  line += buf;
  if (failed > 0) line += "  " + std::to_string(failed) + " failed";
  // A name's control characters (a newline, an escape sequence) would act on the terminal.
  if (!current.empty())
    line += "  decoding " + path_line(std::filesystem::path(current).filename().string());
  return line;
}

Progress::Mode Progress::choose(bool quiet, bool terminal) {
  if (quiet) return Mode::kOff;
  return terminal ? Mode::kBar : Mode::kLines;
}

// The logger's own sinks behind the bar: a message erases the bar, is written, and the bar is
// drawn again below it. Without it a decode thread's warning landed on the end of the bar's line.
class Progress::BarSink final : public spdlog::sinks::dist_sink<std::mutex> {
 public:
  BarSink(Progress& bar, std::vector<spdlog::sink_ptr> sinks)
      : dist_sink(std::move(sinks)), bar_(bar) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::lock_guard<std::mutex> lock(bar_.mu_);
    const bool shown = bar_.drawn_;
    bar_.erase();
    dist_sink::sink_it_(msg);
    dist_sink::flush_();  // before the bar is drawn again, should a sink buffer
    if (shown) bar_.draw(true);
  }

 private:
  Progress& bar_;
};

Progress::Progress(Mode mode, int64_t total, std::FILE* out, double line_every_s)
    : mode_(mode), total_(total), out_(out), line_every_s_(line_every_s), start_s_(now_s()) {
  if (mode_ != Mode::kBar) return;
  logger_ = spdlog::default_logger();
  logger_sinks_ = logger_->sinks();
  logger_->sinks() = {std::make_shared<BarSink>(*this, logger_sinks_)};
}

Progress::~Progress() {
  std::lock_guard<std::mutex> lock(mu_);
  erase();
  if (logger_) logger_->sinks() = logger_sinks_;
}

void Progress::restart(int64_t total) {
  std::lock_guard<std::mutex> lock(mu_);
  total_ = total;
  done_ = failed_ = 0;
  start_s_ = now_s();
}

void Progress::decoding(const std::string& input) {
  std::lock_guard<std::mutex> lock(mu_);
  current_ = input;
}

void Progress::refresh() {
  std::lock_guard<std::mutex> lock(mu_);
  draw(false);
}

void Progress::update(int64_t done, int64_t failed) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ = done;
  failed_ = failed;
  draw(false);
}

void Progress::draw(bool force) {
  const double t = now_s();
  if (mode_ == Mode::kOff) return;
  const std::string current = mode_ == Mode::kBar && done_ < total_ ? current_ : "";
  // A new file being decoded is worth a redraw: the first one may take the model's whole turn.
  force = force || current != shown_;
  const double every = mode_ == Mode::kBar ? kRedrawEvery : line_every_s_;
  if (!force && t - last_draw_s_ < every) return;
  // The first periodic line waits a full period: short runs only print the summary.
  if (mode_ == Mode::kLines && last_draw_s_ < 0 && !force) {
    if (t - start_s_ < every) return;
  }
  last_draw_s_ = t;
  shown_ = current;
  const std::string text =
      format(done_, total_, failed_, t - start_s_, mode_ == Mode::kBar ? kBarWidth : 0, current);
  if (mode_ == Mode::kBar) {
    std::fprintf(out_, "\r%s\x1b[K", text.c_str());  // \x1b[K: erase what a longer line left
    drawn_ = true;
  } else {
    std::fprintf(out_, "progress: %s\n", text.c_str());
  }
  std::fflush(out_);
}

void Progress::erase() {
  if (mode_ != Mode::kBar || !drawn_) return;
  std::fprintf(out_, "\r\x1b[K");
  std::fflush(out_);
  drawn_ = false;
  last_draw_s_ = -1e9;  // redraw at the next update
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (mode_ != Mode::kBar) return;
  draw(true);
  std::fprintf(out_, "\n");
  std::fflush(out_);
  drawn_ = false;
}

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace stam::batch
