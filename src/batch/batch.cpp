// stam batch, the run itself, in sequence: inspect the output, plan what is left, load the model,
// then decode workers -> bounded queue -> batched inference -> one record per input appended to
// the output as soon as it is known, and the summary.
#include "batch/batch.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "batch/decoding.hpp"
#include "batch/plan.hpp"
#include "batch/sink.hpp"
#include "stam/error.hpp"

namespace stam::batch {

namespace {

// What became of one clip in the model.
struct Outcome {
  std::string input;
  std::optional<Result> result;
  std::string error;
};

// Results for `clips`, or per-clip errors. A failing batch is retried one clip at a time so a
// single bad clip (or a batch too big for the device) does not fail its neighbours.
std::vector<Outcome> infer_all(Engine& engine, std::vector<Clip>& clips) {
  std::vector<Outcome> out;
  try {
    std::vector<Result> rs = engine.infer(clips);
    if (rs.size() != clips.size()) throw std::runtime_error("model returned a wrong batch size");
    for (size_t i = 0; i < rs.size(); ++i) {
      if (rs[i].input.empty()) rs[i].input = clips[i].input;
      out.push_back({clips[i].input, std::move(rs[i]), ""});
    }
    return out;
  } catch (const std::exception& e) {
    if (clips.size() == 1) return {{clips[0].input, std::nullopt, e.what()}};
    spdlog::debug("batch of {} failed ({}); retrying one by one", clips.size(), e.what());
  }
  for (auto& c : clips) {
    std::vector<Clip> one{std::move(c)};
    out.push_back(std::move(infer_all(engine, one).front()));
  }
  return out;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-+=/.,:@%") == std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The command line that continues this run: ours, without --overwrite, with --resume.
std::string resume_command() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  if (args.empty()) return "stam batch ... --resume";
  bool resumes = false;
  std::string cmd;
  for (const auto& a : args) {
    if (a == "--overwrite") continue;
    resumes = resumes || a == "--resume" || a == "--retry-errors";
    cmd += (cmd.empty() ? "" : " ") + shell_quote(a);
  }
  return resumes ? cmd : cmd + " --resume";
}

// Checks the options that need no file system; returns the output format they choose.
Format checked_format(const Options& o) {
  const Format format = parse_format(o.format, o.output);
  // merge_outputs.sh and --resume go by the name: a CSV named .jsonl would be read as JSONL.
  const bool named_csv = has_extension(o.output, {"csv"});
  if (!o.format.empty() && named_csv != (format == Format::kCsv))
    throw UsageError("--format " + o.format + ", but " + o.output_option + " " + o.output +
                     " is named as " + (named_csv ? "CSV" : "JSONL") + ": name it ." + o.format +
                     " or leave --format out");
  if (o.inputs.paths.empty() && o.inputs.lists.empty())
    throw UsageError("give at least one INPUT or --list FILE");
  if (o.output.empty()) throw UsageError(o.output_option + " is required");
  if (o.resume && o.overwrite) throw UsageError("--resume and --overwrite exclude each other");
  if (o.retry_errors && o.overwrite)
    throw UsageError("--retry-errors (which implies --resume) and --overwrite exclude each other");
  if (o.logits && format == Format::kCsv) throw UsageError("--logits needs --format jsonl");
  if (o.batch_size < 1) throw UsageError("--batch-size must be at least 1");
  if (o.top_k < 1) throw UsageError("--top-k must be at least 1");
  return format;
}

// One invocation: set up the output, work out what is left, run the pipeline, summarise.
class Runner {
 public:
  Runner(const Options& o, std::istream& list_stdin)
      : o_(o), output_(o, checked_format(o)), start_s_(now_s()) {
    InputSet set = collect_inputs(o.inputs, list_stdin);
    unreadable_ = std::move(set.unreadable);
    s_.ignored = set.ignored;
    if (set.unsearched_dirs > 0)
      spdlog::warn("{} subdirector{} not searched (add --recursive to descend)",
                   set.unsearched_dirs, set.unsearched_dirs == 1 ? "y" : "ies");
    shard_ = select_shard(set.inputs, o.shard);
    s_.total = static_cast<int64_t>(shard_.size());
    all_inputs_ = static_cast<int64_t>(set.inputs.size());
  }

  // Nothing is written until the model has loaded: a run that fails on its weights leaves the
  // output as it found it, so the rerun is not refused as "existing work". Inputs refused
  // without decoding need no model: when all are, it is never loaded.
  // Decoding starts as soon as the engine can prepare inputs, while its weights load.
  Summary execute(const EngineFactory& factory) {
    output_.inspect();
    plan();
    log_plan();
    progress_ = std::make_unique<Progress>(
        Progress::choose(spdlog::get_level() >= spdlog::level::err, ::isatty(STDERR_FILENO)),
        plan_.todo(), stderr);
    if (!plan_.pending.empty() && !stop_requested()) {
      EngineRequest request;
      request.resumed_precision = output_.recorded_precision();
      request.preparer_ready = [this](const Preparer& prepare) { start_decoding(prepare); };
      engine_ = factory(request);
    }
    // Stopped before anything could be labelled (while the model loaded, say): the output is
    // left as it was, not emptied by --overwrite nor rid of errors by --retry-errors.
    if (!stop_requested()) label();
    decoding_.reset();
    const auto left = plan_.todo() - s_.labelled - s_.failed;
    s_.interrupted = stop_requested() && left > 0;
    if (s_.interrupted) warn_interrupted(left);
    s_.wall_s = now_s() - start_s_;
    s_.exit_code = s_.interrupted                  ? static_cast<int>(Exit::kInterrupted)
                   : s_.failed + s_.old_errors > 0 ? static_cast<int>(Exit::kPartial)
                                                   : 0;
    return s_;
  }

 private:
  // Takes the output over and appends the records of what is left to do.
  void label() {
    RecordWriter records =
        output_.open(engine_ ? std::optional(engine_->precision()) : std::nullopt, shard_);
    plan();  // against what the output holds now, under its lock
    if (engine_ && (!decoding_ || decoding_->work != plan_.pending)) {
      decoding_.reset();  // another run recorded some inputs meanwhile
      if (!plan_.pending.empty()) start_decoding(engine_->preparer());
    }
    if (plan_.todo() > 0 && !stop_requested()) {
      RecordSink sink(output_.file(), std::move(records), *progress_, o_.fsync_every_s, start_s_,
                      [this] { return resume_advice(); });
      progress_->restart(plan_.todo());
      for (const auto& [input, error] : plan_.refused) sink.error(input, error);
      if (engine_ && !plan_.pending.empty()) pipeline(*engine_, sink);
      progress_->finish();
      s_.labelled = sink.labelled();
      s_.failed = sink.failed();
    }
    decoding_.reset();
    output_.file().sync();
  }

  // What is left to do, against what the output holds.
  void plan() {
    plan_ = plan_work(shard_, output_.existing(), unreadable_, o_.retry_errors, o_.check_input);
    s_.skipped = plan_.skipped;
    s_.old_errors = plan_.old_errors;
  }

  void log_plan() const {
    std::string shard =
        o_.shard.count > 1 ? fmt::format(" in shard {}/{}", o_.shard.index, o_.shard.count) : "";
    spdlog::info("{} input(s){}: {} already in {}, {} to do", s_.total, shard, s_.skipped,
                 o_.output, plan_.todo());
    if (!plan_.refused.empty())
      spdlog::warn("{} of them cannot be read (missing, empty, not a file or folder)",
                   plan_.refused.size());
    // A walked folder is never taken as one video made of its images: that needs --list.
    if (s_.total == 0 && all_inputs_ > 0)
      spdlog::info("shard {}/{} has none of the {} input(s): nothing to do", o_.shard.index,
                   o_.shard.count, all_inputs_);
    else if (s_.total == 0)
      spdlog::warn(
          "no video files found (see --ext, --recursive; a folder of frames is "
          "labelled as one video when given in a --list file)");
  }

  void start_decoding(const Preparer& prepare) {
    const int workers = o_.decode_workers > 0 ? o_.decode_workers : default_decode_workers(false);
    const auto capacity = 2 * static_cast<size_t>(o_.batch_size) + static_cast<size_t>(workers);
    decoding_ = std::make_unique<Decoding>(prepare, plan_.pending, workers, capacity, *progress_);
  }

  void pipeline(Engine& engine, RecordSink& sink) {
    const auto batch = static_cast<size_t>(o_.batch_size);
    ClipQueue& queue = decoding_->queue;
    // The bar shows at once, 0/N with the file being decoded, not only after the first video.
    progress_->refresh();
    while (!stop_requested() && !queue.finished()) {
      progress_->refresh();
      // Greedy batching: block for the first clip only, then take what is ready. The model
      // never idles waiting to fill a batch; batches fill up by themselves when it is the
      // bottleneck.
      std::vector<Clip> clips;
      for (auto& item : next_items(queue, batch)) {
        if (item.clip)
          clips.push_back(std::move(*item.clip));
        else
          sink.error(item.input, item.error);
      }
      if (clips.empty()) continue;
      for (auto& outcome : infer_all(engine, clips)) {
        if (outcome.result)
          sink.result(*outcome.result);
        else
          sink.error(outcome.input, outcome.error);
      }
    }
  }

  // Up to `batch` decoded clips. A decode worker that failed ends the run: the inputs it held
  // have no record, and a rerun with --resume does them.
  std::vector<Item> next_items(ClipQueue& queue, size_t batch) {
    try {
      return queue.pop(batch, std::chrono::milliseconds(100));
    } catch (const std::exception& e) {
      throw Error(Exit::kInternal, std::string("decoding failed: ") + e.what() + resume_advice());
    }
  }

  void warn_interrupted(int64_t left) {
    spdlog::warn("interrupted: {} input(s) not done; records so far are in {}. Resume with:\n  {}",
                 left, o_.output, resume_hint());
  }

  std::string resume_hint() const {
    return o_.resume_command.empty() ? resume_command() : o_.resume_command;
  }

  std::string resume_advice() const {
    return "\nonce the cause is fixed, resume with:\n  " + resume_hint();
  }

  const Options& o_;
  RunOutput output_;
  double start_s_;
  std::vector<std::string> shard_;
  int64_t all_inputs_ = 0;                         // in every shard
  std::map<std::string, std::string> unreadable_;  // walked folder -> why
  Plan plan_;
  std::unique_ptr<Progress> progress_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Decoding> decoding_;  // after progress_ and engine_: its workers use them
  Summary s_;
};

}  // namespace

Summary run(const Options& options, const EngineFactory& engine, std::istream& list_stdin) {
  return Runner(options, list_stdin).execute(engine);
}

std::string summary_line(const Summary& s) {
  std::string line = fmt::format("{} labelled, {} failed, {} skipped (already in the output",
                                 s.labelled, s.failed, s.skipped);
  if (s.old_errors > 0)
    line += fmt::format(", {} of them errors: --retry-errors redoes them", s.old_errors);
  const double rate = s.wall_s > 0 ? (s.labelled + s.failed) / s.wall_s : 0;
  line += fmt::format("), {} ignored (not video) in {:.1f} s ({:.2f} videos/s)", s.ignored,
                      s.wall_s, rate);
  if (s.interrupted) line += ", interrupted";
  return line;
}

}  // namespace stam::batch
