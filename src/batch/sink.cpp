// Where a batch run's records go: the output file, one whole record at a time, and the counts.
#include "batch/sink.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "stam/error.hpp"

namespace stam::batch {

RecordSink::RecordSink(OutputFile& file, RecordWriter records, Progress& progress,
                       double fsync_every_s, double last_sync_s,
                       std::function<std::string()> advice)
    : file_(file),
      records_(std::move(records)),
      progress_(progress),
      fsync_every_s_(fsync_every_s),
      last_sync_s_(last_sync_s),
      advice_(std::move(advice)) {}

void RecordSink::result(const Result& result) {
  record(records_.result(result), true);
}

void RecordSink::error(const std::string& input, const std::string& error) {
  if (error.find(input) != std::string::npos)  // most errors already name the file
    spdlog::warn("{}", error);
  else
    spdlog::warn("{}: {}", input, error);
  record(records_.error(input, error), false);
}

void RecordSink::record(const std::string& line, bool ok) {
  try {
    file_.append(line);
  } catch (const Error& e) {
    throw Error(e.code(), e.what() + advice_());
  }
  ++(ok ? labelled_ : failed_);
  const double t = now_s();
  if (t - last_sync_s_ >= fsync_every_s_) {
    file_.sync();
    last_sync_s_ = t;
  }
  progress_.update(labelled_ + failed_, failed_);
}

}  // namespace stam::batch
