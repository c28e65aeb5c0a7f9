// stam batch INPUT...: label a tree or list of videos into one JSONL/CSV file; resumable and
// shardable. The work is batch::run_classifier's (batch/batch.hpp); this file maps flags to it.
#include <iostream>
#include <memory>

#include "batch/batch.hpp"
#include "commands.hpp"
#include "decode/decode.hpp"
#include "video_options.hpp"

namespace stam::cli {

namespace {

struct BatchArgs {
  ModelFlags model;
  RecordFlags records;
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
  batch::Options& o = a.records.opts;
  o.inputs.extensions = a.records.extensions(o.inputs.extensions);
  o.shard = a.records.parsed_shard();
  const ModelOptions model = finish_model_options(a.model);
  decode_timeout_s();  // a bad $STAM_DECODE_TIMEOUT is a usage error, not one error per input
  return batch::run_classifier(o, model, std::cin).exit_code;
}

}  // namespace

Command add_batch(CLI::App& app) {
  auto args = std::make_shared<BatchArgs>();
  batch::Options& o = args->records.opts;
  CLI::App* sub = app.add_subcommand("batch", "label many videos into a JSONL/CSV file");
  sub->add_option("input", o.inputs.paths, "video files and directories to walk");
  sub->add_flag("-r,--recursive", o.inputs.recursive, "descend into subdirectories");
  add_ext_option(sub, args->records,
                 "video extensions to pick in directories, comma-separated (default: "
                 "3gp,avi,flv,m2ts,m4v,mkv,mov,mp4,mpeg,mpg,mts,mxf,ogv,ts,webm,wmv)");
  // One value per --list (repeat the flag for more lists): what follows a list file is a
  // positional INPUT, never a second list.
  sub->add_option("--list", o.inputs.lists,
                  "text file of inputs, one a line ('-' = stdin); combines with INPUTs")
      ->allow_extra_args(false);
  sub->add_option("-o,--output", o.output, "JSONL or CSV file to write (appended to)")->required();
  add_format_option(sub, o.format, {"jsonl", "csv"},
                    "jsonl | csv (default: by --output's extension)",
                    /*show_default=*/false);
  add_record_options(sub, args->records);
  add_logits_flag(sub, o.logits, "also store the raw logits (JSONL only)");
  add_model_options(sub, args->model);
  add_top_k_option(sub, args->model);
  sub->footer(std::string(kBatchFooter) + "\n" +
              exit_code_help({Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kModel, Exit::kDevice,
                              Exit::kPartial, Exit::kInterrupted}) +
              "  (batch: 2 also when --output cannot be created, locked or written)\n");
  return {sub, [args] { return run_batch(*args); }};
}

}  // namespace stam::cli
