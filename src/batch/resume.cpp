// A batch run's output as found and as continued: what --resume may add to, what it must refuse,
// and the repairs made once the model has loaded.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <unordered_set>

#include "batch/batch.hpp"
#include "output.hpp"
#include "stam/error.hpp"

namespace stam::batch {

namespace {

// The precision a settings file says its output's records were made in, if it says.
std::optional<Precision> precision_used(const Settings& settings, const std::string& path) {
  if (!settings.contains(kPrecisionUsed)) return std::nullopt;
  const Settings& value = settings[kPrecisionUsed];
  try {
    if (value.is_string()) {
      const Precision p = parse_precision(value.get<std::string>());
      if (p != Precision::kAuto) return p;
    }
  } catch (const UsageError&) {
  }
  throw UsageError(path + ": " + kPrecisionUsed + " is " + value.dump() +
                   ", not a precision (fp32, bf16 or fp16)");
}

}  // namespace

RunOutput::RunOutput(const Options& options, Format format) : o_(options), format_(format) {
  check_output_path(o_.output, o_.output_option);
  std::error_code ec;
  const auto status = std::filesystem::status(o_.output, ec);
  // A pipe or FIFO would block the read-back that --resume needs, a device never ends it.
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    throw UsageError("output " + o_.output +
                     " is not a regular file (a pipe, FIFO or device): stam reads its output "
                     "back to resume; give a file path");
}

bool RunOutput::resuming() const {
  return o_.resume || o_.retry_errors;
}

void RunOutput::inspect() {
  existing_ = ExistingOutput{};
  fresh_ = false;
  settings_recorded_ = false;
  recorded_ = Settings::object();
  recorded_precision_.reset();
  if (o_.overwrite) return;
  existing_ = scan_output(o_.output, format_, o_.top_k);
  if (existing_.records == 0) {
    existing_ = ExistingOutput{};
    fresh_ = true;
    return;
  }
  if (!resuming())
    throw UsageError("output " + o_.output + " already has " + std::to_string(existing_.records) +
                     " record(s): add --resume to continue it or --overwrite to replace it");
  check_settings();
}

// Records made with other settings must not join the output: nothing in a record tells them
// apart. An output without a settings file (older stam, scripts/merge_outputs.sh) cannot be
// checked; it gets the current settings recorded.
void RunOutput::check_settings() {
  const std::string meta = settings_path(o_.output);
  std::error_code ec;
  settings_recorded_ = std::filesystem::exists(meta, ec);
  if (!settings_recorded_) return;
  recorded_ = read_settings(meta);
  const std::vector<std::string> diffs = settings_differences(recorded_, o_.settings);
  if (diffs.empty()) {
    recorded_precision_ = precision_used(recorded_, meta);
    return;
  }
  std::string list;
  for (const auto& d : diffs) list += "\n  " + d;
  throw UsageError("output " + o_.output + " was made with other settings (" + meta + "):" + list +
                   "\nresume with the same settings, or write to another --output");
}

RecordWriter RunOutput::open(std::optional<Precision> used,
                             const std::vector<std::string>& inputs) {
  file_ = std::make_unique<OutputFile>(o_.output);
  if (o_.overwrite)
    file_->truncate(0);
  else
    inspect();
  // The inputs of this run with only error records: it labels them again. Those of other runs
  // (inputs not given now, other shards of a merged output) keep their records.
  std::unordered_set<std::string> redo;
  if (o_.retry_errors && existing_.error_records > 0)
    for (const auto& input : inputs) {
      const std::string key = record_key(input);
      const auto it = existing_.done.find(key);
      if (it != existing_.done.end() && !it->second) redo.insert(key);
    }
  if (fresh_) {
    file_->truncate(0);
  } else if (!redo.empty()) {
    const int64_t dropped = rewrite_without_errors(o_.output, format_, o_.top_k, redo);
    spdlog::info("--retry-errors: removed {} error record(s) of {} input(s) to redo from {}",
                 dropped, redo.size(), o_.output);
    file_->reopen();
    existing_ = scan_output(o_.output, format_, o_.top_k);
  } else if (existing_.valid_bytes < existing_.file_bytes) {
    spdlog::warn("{}: removing an incomplete last record ({} bytes) left by an interrupted run",
                 o_.output, existing_.file_bytes - existing_.valid_bytes);
    file_->truncate(existing_.valid_bytes);
  }
  // A CSV output of an older stam keeps its columns: its rows cannot take a new one.
  RecordWriter records(format_, o_.top_k, o_.logits, existing_.warnings_column);
  if (!existing_.warnings_column)
    spdlog::warn(
        "{} has no warnings column (written by an older stam): the warnings of new records are "
        "only logged; write to a new output to keep them",
        o_.output);
  if (format_ == Format::kCsv && !existing_.has_header) file_->append(records.header());
  const bool continued = settings_recorded_ && !fresh_ && !o_.overwrite;
  // A continued output keeps the settings it records, with those recorded only since (the
  // fingerprints) added: they agree with the current ones (check_settings()).
  Settings settings = continued ? recorded_ : o_.settings;
  for (const auto& [key, value] : o_.settings.items())
    if (!settings.contains(key)) settings[key] = value;
  if (used) settings[kPrecisionUsed] = to_string(*used);
  if (!continued || settings != recorded_) {
    if (!settings_recorded_ && !fresh_ && !o_.overwrite)
      spdlog::warn(
          "{} has no settings file (older stam or a merge); recording the current settings in {} "
          "without checking them",
          o_.output, settings_path(o_.output));
    write_settings(settings_path(o_.output), settings);
  }
  return records;
}

}  // namespace stam::batch
