#pragma once
// What a batch run has left to do (internal to src/batch/): worked out from its shard and what
// its output already holds, with no I/O but the check of each input it is given.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "batch/batch.hpp"

namespace stam::batch {

struct Plan {
  std::vector<std::string> pending;                          // to decode and label
  std::vector<std::pair<std::string, std::string>> refused;  // input, why: recorded as errors
  // Counted, not listed:
  int64_t skipped = 0;     // already in the output
  int64_t old_errors = 0;  // skipped inputs whose record is an error
  int64_t todo() const { return static_cast<int64_t>(pending.size() + refused.size()); }
};

// What is left to do: inputs without a record, and with `retry_errors` those with only errors.
// Those `check_input` refuses (missing, empty, not a file or folder...) and walked folders that
// could not be read (`unreadable`: folder -> why) go to `refused`, to be recorded as errors
// without decoding.
Plan plan_work(const std::vector<std::string>& shard, const ExistingOutput& existing,
               const std::map<std::string, std::string>& unreadable, bool retry_errors,
               const std::function<void(const std::string&)>& check_input);

}  // namespace stam::batch
