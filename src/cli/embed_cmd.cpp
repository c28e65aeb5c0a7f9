// stam embed INPUT... --output FILE: video embeddings (.npy or JSON lines) for search and
// clustering.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "commands.hpp"
#include "options.hpp"
#include "stam/embed.hpp"
#include "stam/output.hpp"

namespace stam::cli {

namespace {

struct EmbedArgs {
  ModelFlags model;
  std::vector<std::string> inputs;
  std::string output;
  bool per_frame = false;
  std::string top_k;  // classify's flag, taken only to say why it does not apply here
};

// Embeds every input in turn; one that fails is reported and left out, the others go on. The
// exit code is the worst of the inputs'.
int run_embed(const EmbedArgs& a) {
  if (!a.top_k.empty())
    throw UsageError("-k/--top-k does not apply to embed: it writes embeddings, not labels");
  embed_format(a.output);  // refuse a bad name or place before loading the model
  check_output_path(a.output, "--output");
  Classifier classifier(finish_model_options(a.model));
  std::vector<Embedding> embeddings;
  int worst = 0;
  for (const auto& input : a.inputs) {
    try {
      embeddings.push_back(embed(classifier, input, a.per_frame));
    } catch (const Error& e) {
      spdlog::error("{}", e.what());
      worst = std::max(worst, static_cast<int>(e.code()));
    }
  }
  const StamConfig& c = classifier.config();
  std::vector<int64_t> row_shape{c.embed_dim};
  if (a.per_frame) row_shape.insert(row_shape.begin(), c.frames);
  write_embeddings(a.output, embeddings, row_shape);
  spdlog::info("wrote {} embedding{} to {}", embeddings.size(), embeddings.size() == 1 ? "" : "s",
               a.output);
  return worst;
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
  add_model_options(sub, args->model);
  sub->add_option("-k,--top-k", args->top_k)->group("");
  sub->footer(exit_code_help(
      {Exit::kOk, Exit::kInternal, Exit::kUsage, Exit::kInput, Exit::kModel, Exit::kDevice}));
  return {sub, [args] { return run_embed(*args); }};
}

}  // namespace stam::cli
