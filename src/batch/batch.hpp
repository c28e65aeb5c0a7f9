#pragma once
// stam batch: label a whole tree or list of videos into one JSONL/CSV file, one record per
// input, that survives being killed (--resume) and splits across machines (--shard K/N).
//
// The pieces live in src/batch/, in the order data flows through them, and each can be tested
// without a model:
//   inputs   (inputs.cpp)   which paths, in which order, in which shard
//   records  (records.cpp)  rendering records and parsing CSV back
//   output   (output.cpp)   the output file: reading it back, atomic rewrite, whole-record appends
//   settings (settings.cpp) what shapes the records (OUT.meta.json): fingerprints, comparison
//   resume   (resume.cpp)   a run's output as found and as continued: refusals, repairs, settings
//   plan     (plan.cpp)     what is left to do: the shard less what the output holds
//   progress (progress.cpp) the stderr bar / periodic line
//   decoding (decoding.cpp) decode workers -> bounded queue
//   engine   (engine.cpp)   the Classifier as the run's model
//   sink     (sink.cpp)     each record appended as soon as it is known, synced, counted
//   run      (batch.cpp)    inspect, plan, load the model, decode -> batched infer -> sink
//   signals  (signals.cpp)  SIGINT/SIGTERM: stop after the clips in progress
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "decode/decode.hpp"
#include "output.hpp"
#include "pipeline/pipeline.hpp"

namespace spdlog {
class logger;
namespace sinks {
class sink;
}  // namespace sinks
}  // namespace spdlog

namespace stam::batch {

// ---------------------------------------------------------------- inputs

// "mp4, .AVI,mkv" -> {"mp4", "avi", "mkv"}. Throws UsageError when nothing is left.
std::vector<std::string> parse_extensions(const std::string& csv);

struct InputSpec {
  std::vector<std::string> paths;  // positional INPUTs: directories are walked, files taken as is
  std::vector<std::string> lists;  // --list files, one path a line; "-" reads `list_stdin`
  bool recursive = false;          // descend into subdirectories of directory INPUTs
  std::vector<std::string> extensions = video_extensions();
};

struct InputSet {
  std::vector<std::string> inputs;  // sorted byte-wise, duplicates removed
  int64_t ignored = 0;              // files in walked directories without a video extension
  int64_t unsearched_dirs = 0;      // subdirectories not entered (no --recursive)
  // Walked subdirectories that could not be read -> why. They are among `inputs`, so that each
  // gets an error record (and is matched on --resume) like any input that cannot be read.
  std::map<std::string, std::string> unreadable;
};

// Reads one --list stream: a path per line; a trailing '\r' is dropped and blank lines skipped.
std::vector<std::string> read_list(std::istream& in);
// Expands the spec into the sorted work list. A missing positional INPUT or --list file, or a
// list that is a directory or not text (a NUL byte, invalid UTF-8), is a UsageError (a typo
// should not start an hours-long run); a missing path inside a list is kept
// and becomes an error record, like any other unreadable input.
InputSet collect_inputs(const InputSpec& spec, std::istream& list_stdin);

struct Shard {
  int64_t index = 0;  // K, from 0
  int64_t count = 1;  // N
};
// Parses "K/N" with 0 <= K < N. Throws UsageError.
Shard parse_shard(const std::string& text);
// Items whose position in `sorted` satisfies position % N == K: shards are disjoint, cover
// everything, and stay the same across reruns as long as the full list is the same.
std::vector<std::string> select_shard(const std::vector<std::string>& sorted, Shard shard);

// ---------------------------------------------------------------- records

enum class Format { kJsonl, kCsv };
// "jsonl" / "csv"; "" picks by the output's extension (.csv -> CSV, anything else -> JSONL).
Format parse_format(const std::string& name, const std::string& output_path);

// Renders records as whole lines (including the final '\n'), ready for a single write().
// CSV rows have a `warnings` column (the result's warnings joined by "; ") before `error`, unless
// `warnings_column` is false: the layout of outputs written before it existed, kept when resuming
// one.
class RecordWriter {
 public:
  RecordWriter(Format format, int64_t top_k, bool with_logits, bool warnings_column = true);
  std::string header() const;  // CSV header row, "" for JSONL
  std::string result(const Result& r) const;
  std::string error(const std::string& input, const std::string& message) const;

 private:
  Format format_;
  int64_t top_k_;
  bool with_logits_;
  bool warnings_column_;
};

std::string csv_header(int64_t top_k, bool warnings_column = true);

// A strict RFC 4180 reader. `complete_bytes` is where the last row ended with a line break
// outside quotes; anything after it is an unterminated (torn) tail.
struct CsvRows {
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> row_end;  // byte offset just past each row's line break
  size_t complete_bytes = 0;
};
CsvRows parse_csv(std::string_view data);

// `path` in lexically normal form without a trailing separator: ds/a.mp4 for ./ds/a.mp4 and
// ds//a.mp4, ds/frames for ds/frames/ and ds/frames/. ("/" stays "/"). The inputs of a run.
std::string normal_path(const std::string& path);
// What --resume (and eval) match records on: path_text() of normal_path(), so ds/a.mp4,
// ./ds/a.mp4 and ds//a.mp4 are one input. Records hold path_text() of the path.
std::string record_key(const std::string& path);
// The same key for a record's "input" as written (path_text() of the path; raw bytes in CSV
// written before path_text): its normal_path(), escapes kept as they are.
std::string stored_record_key(const std::string& input);

// What an existing output file already holds.
struct ExistingOutput {
  bool exists = false;
  uint64_t file_bytes = 0;
  uint64_t valid_bytes = 0;  // whole records (and header); the rest is a torn tail
  bool has_header = false;   // CSV only
  // CSV only: false when the header has no `warnings` column (an output of an older stam).
  bool warnings_column = true;
  // input -> true when it has a result record, false when it has only error records.
  std::unordered_map<std::string, bool> done;
  int64_t records = 0, error_records = 0;
};
// Reads `path` back. A torn last line (no final newline, left by a kill mid-write) is reported
// through valid_bytes < file_bytes. Anything else that is not a record of `format` — a bad line
// in the middle, a CSV header for other columns — throws UsageError: we refuse to touch a file
// that is not ours.
ExistingOutput scan_output(const std::string& path, Format format, int64_t top_k);

// Rewrites `path` without the error records of the inputs in `redo` (record keys: the inputs a
// --retry-errors run will label again; the error records of other inputs stay) and without a torn
// tail, keeping a CSV file's header (and so its columns): written to a temporary file in the same
// directory, fsync'ed, renamed over `path`, directory fsync'ed. A crash at any point leaves either
// the old or the new file, never a mix. Returns how many error records were dropped.
int64_t rewrite_without_errors(const std::string& path, Format format, int64_t top_k,
                               const std::unordered_set<std::string>& redo);

// The output file, appended to one whole record at a time.
class OutputFile {
 public:
  // Opens (creating the file, never its folder) for O_APPEND and takes an exclusive flock so
  // two runs cannot interleave into one file. Throws Error(kUsage) naming the path.
  explicit OutputFile(const std::string& path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // One write() of the whole record (looping only on a short write). Throws Error(kUsage), after
  // cutting what was written of the record (a disk that fills up part way).
  void append(const std::string& bytes);
  void truncate(uint64_t size);
  void sync();  // fdatasync
  // Opens the path again: after rewrite_without_errors() renamed a new file over it.
  void reopen();
  const std::string& path() const { return path_; }

 private:
  static int open_locked(const std::string& path);
  std::string path_;
  int fd_ = -1;
};

// ---------------------------------------------------------------- settings

// The settings that shape an output's records, in a fixed order: weights and labels (file name,
// size and a fingerprint of the content: for a zip checkpoint its records' CRC-32s as its zip
// directory states them, for a legacy one 16 pieces of 64 KiB, for labels all bytes; hashing
// 477 MB would cost seconds), frames, sampling, precision, top-k, logits. They are kept beside
// the output in OUT.meta.json, so --resume can refuse to mix records made with other settings
// into one file. Beside them, "precision_used" records what `auto` chose: the run records it, a
// resumed run takes it, and it is no setting to compare. A settings file written before the
// fingerprints gets them added, unchecked.
using Settings = nlohmann::ordered_json;
// Resolves the default model files, reads the checkpoint's index (not the tensors: for its own T
// when frames is 0, and its format) and fingerprints both files. Throws ModelError.
Settings model_settings(const ModelOptions& model, bool logits);
std::string settings_path(const std::string& output);  // OUT + ".meta.json"
inline constexpr const char* kPrecisionUsed = "precision_used";
// "frames: 8 in the output, 4 now" for every setting that differs; empty when they agree.
std::vector<std::string> settings_differences(const Settings& recorded, const Settings& now);
// Throws UsageError when the file is not a settings record.
Settings read_settings(const std::string& path);
// Written to a temporary file and renamed over `path`: never half-written. Throws UsageError.
void write_settings(const std::string& path, const Settings& settings);

// ---------------------------------------------------------------- resume

struct Options;

// The output of one run, as found and as continued. Before the model loads, inspect() reads what
// the output holds without touching it and refuses what must not be continued; once it has
// loaded, open() takes the file over. A run that fails in between leaves the output as it was.
class RunOutput {
 public:
  // Checks the path only (check_output_path(), and an existing file must be a regular one).
  RunOutput(const Options& options, Format format);

  // Reads what the output already records. Throws UsageError for an output with records when
  // not resuming, or one made with other settings (OUT.meta.json). An output without records (a
  // CSV header, blanks or a torn first line, left by a failed run) is started afresh.
  void inspect();
  // Takes the lock and inspects again (another run may have finished meanwhile), then repairs
  // a torn tail, drops under --retry-errors the error records of those of the run's `inputs` (its
  // shard) that have no result, as it redoes them, writes the CSV header and the settings file,
  // with the precision the engine runs in (`used`, when one loaded). Returns the writer for new
  // records: an older CSV keeps its columns.
  RecordWriter open(std::optional<Precision> used, const std::vector<std::string>& inputs);
  // The precision the output's records were made in, as its settings file records it (after
  // inspect(); none for a new output or one without that record).
  std::optional<Precision> recorded_precision() const { return recorded_precision_; }

  // What the output holds: as inspected, or after open()'s repairs.
  const ExistingOutput& existing() const { return existing_; }
  // Valid after open().
  OutputFile& file() { return *file_; }

 private:
  bool resuming() const;
  void check_settings();

  const Options& o_;
  Format format_;
  ExistingOutput existing_;
  bool fresh_ = false;                      // the output holds no records: start it afresh
  bool settings_recorded_ = false;          // OUT.meta.json exists and matches
  Settings recorded_ = Settings::object();  // what it holds then
  std::optional<Precision> recorded_precision_;
  std::unique_ptr<OutputFile> file_;
};

// ---------------------------------------------------------------- progress

class Progress {
 public:
  enum class Mode { kOff, kBar, kLines };
  // kOff when quiet, a redrawn bar when stderr is a terminal, else a line every `line_every_s`.
  static Mode choose(bool quiet, bool terminal);
  // A bar takes the default logger's sinks over while it lives, so that a message logged by any
  // thread (a decode worker's warning) erases the bar, gets its own line, and the bar is drawn
  // again below it. Create and destroy one while no other thread logs.
  Progress(Mode mode, int64_t total, std::FILE* out, double line_every_s = 10.0);
  ~Progress();  // erases a bar left on screen (a run that ends with an error), restores the sinks
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // All members are thread-safe.
  // Counts anew from now, for `total` inputs: once the model has loaded and the work is known.
  void restart(int64_t total);
  void update(int64_t done, int64_t failed);  // throttled; call after every record
  void refresh();                             // throttled redraw, e.g. to show decoding()
  void finish();                              // final redraw and newline for the bar
  // The input a decoder has started on (the decode workers call it), shown by the next draw.
  void decoding(const std::string& input);

  // "[#####.....]  37/120  4.1 videos/s  ETA 0:20  2 failed  decoding clip.mp4" (no bar when
  // width == 0, no file when `current` is empty; its name as path_line() writes it).
  static std::string format(int64_t done, int64_t total, int64_t failed, double elapsed_s,
                            int width, const std::string& current = "");

 private:
  class BarSink;  // progress.cpp
  // With mu_ held:
  void draw(bool force);
  void erase();
  std::mutex mu_;        // guards all below
  std::string current_;  // the file being decoded
  std::string shown_;    // the file named by the last draw
  Mode mode_;
  int64_t total_, done_ = 0, failed_ = 0;
  std::FILE* out_;
  double line_every_s_;
  double start_s_, last_draw_s_ = -1e9;
  bool drawn_ = false;
  std::shared_ptr<spdlog::logger> logger_;                          // whose sinks a bar took over
  std::vector<std::shared_ptr<spdlog::sinks::sink>> logger_sinks_;  // given back at the end
};

// "1:02:03" / "2:03"; "?" for a non-finite or negative value.
std::string format_duration(double seconds);

// Seconds on a monotonic clock: the one time base of the run's rates, ETA and sync timer.
double now_s();

// ---------------------------------------------------------------- run

// Decodes, samples and preprocesses one input for the model. Thread-safe.
using Preparer = std::function<Clip(const std::string& input)>;

// What the run needs from the model; Classifier in production, a fake in tests.
class Engine {
 public:
  virtual ~Engine() = default;
  virtual Preparer preparer() const = 0;
  virtual std::vector<Result> infer(const std::vector<Clip>& clips) = 0;
  // The precision infer() runs in, `auto` resolved: recorded beside the output.
  virtual Precision precision() const = 0;
};

// What a run asks of the engine it loads.
struct EngineRequest {
  // The precision the output's records were made in, when a run continues one: `auto` takes it
  // instead of choosing afresh, so that a run resumed on another CPU does not mix precisions.
  std::optional<Precision> resumed_precision;
  // May be called once, as soon as inputs can be prepared and before the weights load: the run
  // starts decoding while the model loads.
  std::function<void(const Preparer&)> preparer_ready;
};
// Called only when there is work to do, so a finished shard never loads the model.
using EngineFactory = std::function<std::unique_ptr<Engine>(const EngineRequest&)>;
EngineFactory classifier_engine(const ModelOptions& options);

// Decode threads when --decode-workers is 0. On CPU the model is the bottleneck by far (STAM-16:
// ~4 s of inference against 0.03-0.3 s of decoding per video on 2 cores), so the decoders get a
// quarter of the cores (1 to 8) and the model keeps all of them: the decoders idle once the queue
// is full, so the overlap is brief. Measured on 2 cores, 4 test videos, full-size STAM-16: model
// on all cores + 1 decoder 17.5 s; model on the cores left by 2 decoders (1 thread) 30.5 s. A GPU
// leaves the CPU to decoding: cores - 1 (1 to 8).
int default_decode_workers(bool gpu);

// The decoded clips waiting for the model: up to 2 x --batch-size + the workers, and no more
// pixels than this (the clip that crosses it is let in). A 16-frame clip of 224 px is 2.4 MB,
// page-locked on a GPU (and kept by LibTorch's pinned-memory cache), so -b 4096 could hold ~20 GB.
// 512 MiB leaves -b up to ~100 as it was; beyond that a batch is what the queue holds (~200 such
// clips), which is far past what keeps a GPU busy.
constexpr int64_t kDecodeQueueBytes = int64_t{512} << 20;

struct Options {
  InputSpec inputs;
  Shard shard;
  std::string output;
  std::string output_option = "--output";  // as messages name it (eval: --records)
  std::string format;                      // "" = by the output's extension
  bool resume = false;
  bool retry_errors = false;  // implies resume
  bool overwrite = false;
  bool logits = false;  // JSONL only
  int64_t top_k = 5;
  int64_t batch_size = 1;
  int decode_workers = 0;  // 0 = automatic
  double fsync_every_s = 10.0;
  std::string resume_command;  // shown when interrupted ("" = built from /proc/self/cmdline)
  // Refuses an input without decoding it (throws InputError): such inputs are recorded as errors
  // before the model loads, and when all are, it never loads.
  std::function<void(const std::string&)> check_input = stam::check_input;
  Settings settings = Settings::object();  // recorded in OUT.meta.json, checked on --resume
};

struct Summary {
  int64_t total = 0;       // inputs in this shard
  int64_t labelled = 0;    // results written by this run
  int64_t failed = 0;      // error records written by this run
  int64_t skipped = 0;     // already in the output (--resume)
  int64_t old_errors = 0;  // skipped inputs whose record is an error
  int64_t ignored = 0;     // non-video files in walked directories
  bool interrupted = false;
  double wall_s = 0;
  int exit_code = 0;  // 0, 6 (some inputs failed) or 130 (interrupted)
};

// The whole command. Throws stam::Error for usage/output problems and whatever the engine
// factory throws (ModelError, DeviceError) before any work starts.
Summary run(const Options& options, const EngineFactory& engine, std::istream& list_stdin);
std::string summary_line(const Summary& s);

// What `stam batch` and `stam eval` run: run() with the classifier `model` names, --top-k fitted
// to its labels (read_labels_fitting_top_k), its settings (model_settings) recorded beside the
// output, decode workers chosen for its device when `options` leaves them at 0, SIGINT and SIGTERM
// stopping it cleanly (SignalGuard). Logs the summary line. Throws as run() and model_settings do.
Summary run_classifier(Options options, ModelOptions model, std::istream& list_stdin);

// SIGINT/SIGTERM handling: the first signal asks the run to stop after the clips being
// inferred (stam stream: to stop reading), writing `announcement` to stderr unless logging is
// quieter than errors; the second exits at once with 130. Restores the previous handlers when
// destroyed, unless a stop was asked for: then a second signal still exits with 130 until the
// process ends.
extern const char kBatchStopAnnouncement[];
class SignalGuard {
 public:
  explicit SignalGuard(const char* announcement = kBatchStopAnnouncement);
  ~SignalGuard();
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
};
bool stop_requested();
void request_stop();  // what the handler does; also for tests
void clear_stop();

}  // namespace stam::batch
