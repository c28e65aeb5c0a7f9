// stam embed INPUT... --output FILE: video embeddings (.npy or JSON lines) for search and
// clustering.
#include <spdlog/spdlog.h>

#include <memory>

#include "commands.hpp"
#include "decode/decode.hpp"
#include "embed.hpp"
#include "video_options.hpp"
#include "output.hpp"

namespace stam::cli {

namespace {

struct EmbedArgs {
  ModelFlags model;
  std::vector<std::string> inputs;
  std::string output;
  bool per_frame = false;
  std::string top_k;  // classify's flags, taken only to say why they do not apply here
  std::string labels;
};

// The output is written only when some input was embedded (the work is embed_each's): an existing
// file is never replaced by an empty one. The exit code is the worst of the inputs'.
int run_embed(const EmbedArgs& a) {
  if (!a.top_k.empty())
    throw UsageError("-k/--top-k does not apply to embed: it writes embeddings, not labels");
  if (!a.labels.empty())
    throw UsageError("--labels does not apply to embed: it writes embeddings, not class names");
  embed_format(a.output);  // refuse a bad name or place before loading the model
  check_output_path(a.output, "--output");
  ModelOptions options = finish_model_options(a.model);
  options.with_labels = false;  // a checkpoint of any class count embeds
  decode_timeout_s();           // a bad $STAM_DECODE_TIMEOUT is a usage error before any work
  const Embeddings e = embed_each(options, a.inputs, a.per_frame);
  if (e.rows.empty()) {
    spdlog::error("no input could be embedded; {} was not written", a.output);
    return e.worst;
  }
  write_embeddings(a.output, e.rows, e.row_shape);
  spdlog::info("wrote {} embedding{} to {}", e.rows.size(), e.rows.size() == 1 ? "" : "s",
               a.output);
  return e.worst;
}

}  // namespace

Command add_embed(CLI::App& app) {
  auto args = std::make_shared<EmbedArgs>();
  CLI::App* sub = app.add_subcommand("embed", "write video embeddings for search and clustering");
  sub->add_option("input", args->inputs, "video files or frames folders")->required();
  sub->add_option("-o,--output", args->output,
                  "FILE.npy (float32 N x D, inputs in FILE.paths.txt) or FILE.jsonl")
      ->required();
  sub->add_flag("--per-frame", args->per_frame,
                "the T frame embeddings of each input (N x T x D) instead of the clip's");
  add_model_options(sub, args->model, true, /*labels=*/false);
  add_refused_option(sub, "-k,--top-k", args->top_k);
  add_refused_option(sub, "--labels", args->labels);
  sub->footer(exit_code_help(
      {Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kInput, Exit::kModel, Exit::kDevice}));
  return {sub, [args] { return run_embed(*args); }};
}

}  // namespace stam::cli
