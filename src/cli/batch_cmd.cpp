// stam batch INPUT...: label a tree or list of videos into one JSONL/CSV file; resumable and
// shardable. The work is in stam/batch.hpp; this file only maps flags to batch::Options.
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>

#include "batch/batch.hpp"
#include "commands.hpp"
#include "decode/decode.hpp"
#include "device.hpp"
#include "options.hpp"

namespace stam::cli {

namespace {

struct BatchArgs {
  ModelFlags model;
  batch::Options opts;
  std::string ext;
  std::string shard;
  // Given at all: an empty value is an error, not the default.
  CLI::Option* ext_given = nullptr;
  CLI::Option* shard_given = nullptr;
};

const char* kBatchFooter =
    "Inputs: a directory INPUT is walked for files with a video extension (case-insensitive;\n"
    "dot-files skipped; --recursive descends, not into symlinked directories). A file INPUT\n"
    "or a --list line is taken as is, whatever its extension. A folder of image frames is\n"
    "one video only as a --list line (as an INPUT it is walked for videos). Work runs in\n"
    "sorted path order; --shard K/N takes every N-th input starting at K.\n"
    "Records: one per input, as `classify --format json`, or {\"input\",\"error\"}; each\n"
    "appended as one whole line. --resume skips inputs already recorded (results and errors)\n"
    "and cuts a torn last line.\n";

int run_batch(BatchArgs& a) {
  batch::Options& o = a.opts;
  if (a.ext_given->count() > 0) o.inputs.extensions = batch::parse_extensions(a.ext);
  if (a.shard_given->count() > 0) o.shard = batch::parse_shard(a.shard);
  ModelOptions model = finish_model_options(a.model);
  decode_timeout_s();  // a bad $STAM_DECODE_TIMEOUT is a usage error, not one error per input
  read_labels_fitting_top_k(model);
  o.top_k = model.top_k;
  o.settings = batch::model_settings(model, o.logits);
  if (o.decode_workers == 0)
    o.decode_workers = batch::default_decode_workers(resolve_device(model.device).is_cuda());
  batch::SignalGuard signals;
  batch::Summary s = batch::run(o, batch::classifier_engine(model), std::cin);
  spdlog::info("{}", batch::summary_line(s));
  return s.exit_code;
}

}  // namespace

Command add_batch(CLI::App& app) {
  auto args = std::make_shared<BatchArgs>();
  batch::Options& o = args->opts;
  CLI::App* sub = app.add_subcommand("batch", "label many videos into a JSONL/CSV file");
  sub->add_option("input", o.inputs.paths, "video files and directories to walk");
  sub->add_flag("-r,--recursive", o.inputs.recursive, "descend into subdirectories");
  args->ext_given =
      sub->add_option("--ext", args->ext,
                      "video extensions to pick in directories, comma-separated (default: "
                      "3gp,avi,flv,m2ts,m4v,mkv,mov,mp4,mpeg,mpg,mts,mxf,ogv,ts,webm,wmv)");
  // One value per --list (repeat the flag for more lists): what follows a list file is a
  // positional INPUT, never a second list.
  sub->add_option("--list", o.inputs.lists,
                  "text file of inputs, one a line ('-' = stdin); combines with INPUTs")
      ->allow_extra_args(false);
  sub->add_option("-o,--output", o.output, "JSONL or CSV file to write (appended to)")->required();
  sub->add_option("--format", o.format, "jsonl | csv (default: by --output's extension)")
      ->check(CLI::IsMember({"jsonl", "csv"}));
  sub->add_flag("--resume", o.resume, "continue an existing output: skip inputs it records");
  sub->add_flag("--retry-errors", o.retry_errors,
                "with --resume (implied), redo inputs whose record is an error");
  sub->add_flag("--overwrite", o.overwrite, "replace an existing non-empty output");
  args->shard_given = sub->add_option("--shard", args->shard,
                                      "K/N: only the K-th (from 0) of N parts of the inputs");
  sub->add_option("-b,--batch-size", o.batch_size, "videos per model call")
      ->check(whole_number(1, 4096))
      ->capture_default_str();
  sub->add_option("-j,--decode-workers", o.decode_workers, "decoding threads (0 = automatic)")
      ->check(whole_number(0, 256))
      ->capture_default_str();
  sub->add_flag("--logits", o.logits, "also store the raw logits (JSONL only)");
  add_model_options(sub, args->model);
  add_top_k_option(sub, args->model);
  sub->footer(std::string(kBatchFooter) + "\n" +
              exit_code_help({Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kModel, Exit::kDevice,
                              Exit::kPartial, Exit::kInterrupted}) +
              "  (batch: 2 also when --output cannot be created, locked or written)\n");
  return {sub, [args] { return run_batch(*args); }};
}

}  // namespace stam::cli
