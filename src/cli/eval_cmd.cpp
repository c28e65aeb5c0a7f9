// stam eval DIR | --list FILE: accuracy on a labelled set. The labelling is `stam batch` into a
// resumable records file (batch::run_classifier); the metrics are eval.hpp's. This file maps
// flags to both.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "batch/batch.hpp"
#include "commands.hpp"
#include "decode/decode.hpp"
#include "eval.hpp"
#include "model/load.hpp"
#include "video_options.hpp"
#include "print.hpp"
#include "util/text.hpp"

namespace stam::cli {

namespace {

struct EvalArgs {
  ModelFlags model;
  RecordFlags records;
  std::string dir;
  std::string list;
  std::string format = "text";
};

const char* kEvalFooter =
    "Ground truth: DIR/<class name>/<video> (folder names as in the labels file, underscores\n"
    "or spaces, any case), or --list lines `path,label` (label: a class name or index).\n"
    "Labelling is `stam batch` into --records (JSONL, OUT.meta.json beside it): --resume\n"
    "continues it, --shard K/N labels a part. Accuracy counts the videos with a result;\n"
    "inputs that fail to decode are counted and listed.\n";

std::vector<eval::Sample> ground_truth(const EvalArgs& a, const std::vector<std::string>& labels) {
  if (a.dir.empty() == a.list.empty())
    throw UsageError("eval: give the labelled set once: DIR or --list FILE");
  if (!a.dir.empty())
    return eval::samples_from_tree(a.dir, labels, a.records.extensions(video_extensions()));
  if (a.list == "-") return eval::samples_from_list(std::cin, "stdin", labels);
  std::ifstream in(a.list);
  if (!in) throw UsageError("eval: cannot read the list " + a.list);
  return eval::samples_from_list(in, a.list, labels);
}

int run_eval(EvalArgs& a) {
  batch::Options& o = a.records.opts;
  decode_timeout_s();  // a bad $STAM_DECODE_TIMEOUT is a usage error, not one error per input
  // The shard is chosen here, over the labelled inputs; batch then labels all it is given.
  const batch::Shard shard = a.records.parsed_shard();
  ModelOptions model = finish_model_options(a.model);
  const auto labels = read_labels_fitting_top_k(model);
  const auto samples = eval::select_shard(ground_truth(a, labels), shard);

  // Every labelled input goes to batch as a list line, so a missing or undecodable one becomes
  // an error record like any other.
  std::ostringstream paths;
  for (const auto& s : samples) paths << s.input << "\n";
  std::istringstream list(paths.str());
  o.inputs.lists = {"-"};
  o.format = "jsonl";
  o.output_option = "--records";
  if (has_extension(o.output, {"csv"}))
    throw UsageError("--records " + o.output + ": eval writes JSONL records; name the file .jsonl");
  const batch::Summary s = batch::run_classifier(o, model, list);
  if (s.interrupted) return s.exit_code;

  const auto report = eval::evaluate(samples, eval::read_records(o.output), model.top_k);
  print(a.format, {[&] { return eval::report_json(report, labels); },
                   [&] { return eval::report_text(report, labels); },
                   {}});
  return report.failed.empty() ? 0 : static_cast<int>(Exit::kPartial);
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  batch::Options& o = args->records.opts;
  CLI::App* sub = app.add_subcommand("eval", "accuracy on a labelled set (top-1, top-5, ...)");
  sub->add_option("dir", args->dir, "labelled tree: DIR/<class name>/<video>");
  sub->add_option("--list", args->list, "text file of `path,label` lines ('-' = stdin)");
  add_ext_option(sub, args->records, "video extensions to pick in DIR (default: as batch)");
  sub->add_option("-o,--records", o.output, "JSONL file of batch records to write (appended to)")
      ->required();
  add_format_option(sub, args->format, {"text", "json"}, "text | json: the report on stdout");
  add_record_options(sub, args->records);
  // The same options as batch's, worded for a labelled set and its records.
  sub->get_option("--resume")->description("continue the records: skip inputs they hold");
  sub->get_option("--retry-errors")->description("with --resume (implied), redo failed inputs");
  sub->get_option("--overwrite")->description("replace existing records");
  sub->get_option("--shard")->description("K/N: only the K-th (from 0) of N parts of the set");
  add_model_options(sub, args->model);
  add_top_k_option(sub, args->model);
  sub->footer(std::string(kEvalFooter) + "\n" +
              exit_code_help({Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kModel, Exit::kDevice,
                              Exit::kPartial, Exit::kInterrupted}));
  return {sub, [args] { return run_eval(*args); }};
}

}  // namespace stam::cli
