#pragma once
// Where a batch run's records go (internal to src/batch/): appended to the output whole as soon
// as each is known, synced now and then, counted, and shown on the progress line.
#include <cstdint>
#include <functional>
#include <string>

#include "batch/batch.hpp"

namespace stam::batch {

class RecordSink {
 public:
  // `last_sync_s` (now_s()): when the output was last known to be on disk. `advice` is added to
  // the message of an append that fails: how to resume once the cause is fixed.
  RecordSink(OutputFile& file, RecordWriter records, Progress& progress, double fsync_every_s,
             double last_sync_s, std::function<std::string()> advice);

  void result(const Result& result);
  void error(const std::string& input, const std::string& error);  // also logged as a warning
  int64_t labelled() const { return labelled_; }
  int64_t failed() const { return failed_; }

 private:
  void record(const std::string& line, bool ok);

  OutputFile& file_;
  RecordWriter records_;
  Progress& progress_;
  double fsync_every_s_, last_sync_s_;
  std::function<std::string()> advice_;
  int64_t labelled_ = 0, failed_ = 0;
};

}  // namespace stam::batch
