// stam eval DIR | --list FILE: accuracy on a labelled set. The labelling is `stam batch` into a
// resumable records file; the metrics are in stam/eval.hpp. This file maps flags to both.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "batch/batch.hpp"
#include "commands.hpp"
#include "decode/decode.hpp"
#include "device.hpp"
#include "eval.hpp"
#include "labels.hpp"
#include "options.hpp"
#include "output.hpp"

namespace stam::cli {

namespace {

struct EvalArgs {
  ModelFlags model;
  batch::Options opts;
  std::string dir;
  std::string list;
  std::string ext;
  std::string shard;
  std::string format = "text";
  // Given at all: an empty value is an error, not the default.
  CLI::Option* ext_given = nullptr;
  CLI::Option* shard_given = nullptr;
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
  if (!a.dir.empty()) {
    const auto exts =
        a.ext_given->count() > 0 ? batch::parse_extensions(a.ext) : video_extensions();
    return eval::samples_from_tree(a.dir, labels, exts);
  }
  if (a.list == "-") return eval::samples_from_list(std::cin, "stdin", labels);
  std::ifstream in(a.list);
  if (!in) throw UsageError("eval: cannot read the list " + a.list);
  return eval::samples_from_list(in, a.list, labels);
}

int run_eval(EvalArgs& a) {
  batch::Options& o = a.opts;
  decode_timeout_s();  // a bad $STAM_DECODE_TIMEOUT is a usage error, not one error per input
  // The shard is chosen here, over the labelled inputs; batch then labels all it is given.
  const batch::Shard shard =
      a.shard_given->count() > 0 ? batch::parse_shard(a.shard) : batch::Shard{};
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
  o.top_k = model.top_k;
  o.settings = batch::model_settings(model, false);
  if (o.decode_workers == 0)
    o.decode_workers = batch::default_decode_workers(resolve_device(model.device).is_cuda());
  batch::SignalGuard signals;
  const batch::Summary s = batch::run(o, batch::classifier_engine(model), list);
  spdlog::info("{}", batch::summary_line(s));
  if (s.interrupted) return s.exit_code;

  const auto report = eval::evaluate(samples, eval::read_records(o.output), model.top_k);
  if (a.format == "json")
    // As classify and timeline: indented at a terminal, one line for a program.
    std::cout << dump_json(eval::report_json(report, labels), ::isatty(STDOUT_FILENO) ? 2 : -1)
              << "\n";
  else
    std::cout << eval::report_text(report, labels);
  return report.failed.empty() ? 0 : static_cast<int>(Exit::kPartial);
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  batch::Options& o = args->opts;
  CLI::App* sub = app.add_subcommand("eval", "accuracy on a labelled set (top-1, top-5, ...)");
  sub->add_option("dir", args->dir, "labelled tree: DIR/<class name>/<video>");
  sub->add_option("--list", args->list, "text file of `path,label` lines ('-' = stdin)");
  args->ext_given =
      sub->add_option("--ext", args->ext, "video extensions to pick in DIR (default: as batch)");
  sub->add_option("-o,--records", o.output, "JSONL file of batch records to write (appended to)")
      ->required();
  sub->add_option("--format", args->format, "text | json: the report on stdout")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  sub->add_flag("--resume", o.resume, "continue the records: skip inputs they hold");
  sub->add_flag("--retry-errors", o.retry_errors, "with --resume (implied), redo failed inputs");
  sub->add_flag("--overwrite", o.overwrite, "replace existing records");
  args->shard_given =
      sub->add_option("--shard", args->shard, "K/N: only the K-th (from 0) of N parts of the set");
  sub->add_option("-b,--batch-size", o.batch_size, "videos per model call")
      ->check(whole_number(1, 4096))
      ->capture_default_str();
  sub->add_option("-j,--decode-workers", o.decode_workers, "decoding threads (0 = automatic)")
      ->check(whole_number(0, 256))
      ->capture_default_str();
  add_model_options(sub, args->model);
  add_top_k_option(sub, args->model);
  sub->footer(std::string(kEvalFooter) + "\n" +
              exit_code_help({Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kModel, Exit::kDevice,
                              Exit::kPartial, Exit::kInterrupted}));
  return {sub, [args] { return run_eval(*args); }};
}

}  // namespace stam::cli
