#pragma once
// stam eval: accuracy on a labelled set. The set is either a tree laid out as Kinetics is
// (DIR/<class name>/<video>) or a list of `path,label` lines. Labelling itself is `stam batch`
// (resumable, shardable records); this file turns the ground truth and those records into
// top-1, top-k, mean class accuracy, a per-class table and the most confused pairs.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <istream>
#include <string>
#include <unordered_map>
#include <vector>

#include "batch/batch.hpp"

namespace stam::eval {

// One labelled input: its path as batch records name it, and its true class index.
struct Sample {
  std::string input;
  int64_t label = 0;
};

// The class index `name` denotes in `labels`: an exact match, else the same name with
// underscores as spaces, case ignored (Kinetics folders are named both ways); -1 when none.
int64_t find_class(const std::string& name, const std::vector<std::string>& labels);

// DIR/<class>/...: every file with one of `extensions` under each class folder (recursively,
// dot-files skipped), in sorted path order. Throws UsageError when DIR is not a directory, has
// no class folders, or has folders that name no class (all of them listed).
std::vector<Sample> samples_from_tree(const std::string& dir,
                                      const std::vector<std::string>& labels,
                                      const std::vector<std::string>& extensions);

// `path,label` lines (split at the last comma, so paths may hold commas; blank lines and a
// trailing '\r' skipped); the label is a class name or a class index, spaces around it ignored,
// and may be quoted as CSV quotes a field ("making tea", a quote inside doubled; such a label may
// hold commas). A video listed again (by its path in normal form, ./a.mp4 being a.mp4) counts
// once; under another label it is a bad line. Throws UsageError naming `source` and every bad
// line.
std::vector<Sample> samples_from_list(std::istream& in, const std::string& source,
                                      const std::vector<std::string>& labels);

// The samples whose input falls in `shard` of the sorted, deduplicated inputs: the same split
// `stam batch --shard` makes.
std::vector<Sample> select_shard(const std::vector<Sample>& samples, batch::Shard shard);

// What the batch records say about one input: its ranked class indices, or its error.
struct Outcome {
  std::vector<int64_t> ranked;  // best first
  std::string error;            // non-empty when the input failed
};

// Reads batch JSONL records (`classify --format json` objects or {"input","error"}); a result
// wins over an error for the same input. A torn last line is ignored. Throws UsageError naming
// the file and line when a line is not a record.
std::unordered_map<std::string, Outcome> read_records(const std::string& path);

struct ClassStats {
  int64_t index = 0;
  int64_t videos = 0;  // evaluated (decoded) videos of this class
  int64_t top1 = 0, topk = 0;
  int64_t failed = 0;
};

struct Confusion {
  int64_t truth = 0, predicted = 0;
  int64_t count = 0;
};

struct Failure {
  std::string input;
  std::string error;
};

struct Report {
  int64_t k = 5;
  int64_t total = 0;      // labelled inputs
  int64_t evaluated = 0;  // with a result record
  int64_t top1 = 0, topk = 0;
  // Over `evaluated`; 0 when it is 0, and rendered then as null (JSON) or n/a (text).
  double top1_accuracy = 0, topk_accuracy = 0;
  double mean_class_accuracy = 0;     // mean of the per-class top-1 over classes with videos
  std::vector<ClassStats> classes;    // classes with at least one labelled input, by index
  std::vector<Confusion> confusions;  // most frequent (truth, wrong top-1) pairs first
  std::vector<Failure> failed;        // error records, in input order
  std::vector<std::string> missing;   // inputs without any record (interrupted, other shard)
};

// Scores `samples` against `records`: top-1 and top-`k` over the inputs that have a result;
// failures and missing inputs are counted and listed, never dropped. Keeps the
// `max_confusions` most frequent confusions (ties by class index).
Report evaluate(const std::vector<Sample>& samples,
                const std::unordered_map<std::string, Outcome>& records, int64_t k,
                size_t max_confusions = 10);

// Renderings; class names come from `labels`.
nlohmann::ordered_json report_json(const Report& r, const std::vector<std::string>& labels);
std::string report_text(const Report& r, const std::vector<std::string>& labels);

}  // namespace stam::eval
