#include "options.hpp"

#include <algorithm>
#include <memory>


namespace stam::cli {

namespace {

// CLI11 (2.1) ends the option groups with a blank line of its own when the last group is the
// hidden one, so the help of a command with hidden options had two blank lines before its
// footer; this formatter drops the extra one.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override {
    std::string help = CLI::Formatter::make_help(app, std::move(name), mode);
    for (size_t at; (at = help.find("\n\n\n")) != std::string::npos;) help.erase(at, 1);
    return help;
  }
};

}  // namespace

CLI::Validator whole_number(long lo, long hi) {
  std::string range = std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& value) -> std::string {
        long n = 0;
        if (!CLI::detail::lexical_cast(value, n))
          return "'" + value + "' is not a whole number (expected " + range + ")";
        if (n < lo || n > hi) return value + " is out of range (expected " + range + ")";
        return {};
      },
      "INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

const CLI::Validator non_empty(
    [](std::string& value) -> std::string {
      return value.empty() ? "an empty path names no file" : "";
    },
    "");

CLI::Option* add_weights_option(CLI::App* app, std::string& into) {
  return app
      ->add_option("-w,--weights", into,
                   "STAM checkpoint (.pth from torch.save); default: models/stam_16.pth")
      ->check(non_empty);
}

CLI::Option* add_device_option(CLI::App* app, std::string& into) {
  return app->add_option("--device", into, "auto | cpu | cuda | cuda:N")->capture_default_str();
}

CLI::Option* add_precision_option(CLI::App* app, std::string& into) {
  return app
      ->add_option(
          "--precision", into,
          "auto (CPU: the faster of fp32 and bf16, measured; CUDA: fp16) | fp32 | bf16 | fp16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp16"}))
      ->capture_default_str();
}

CLI::Option* add_threads_option(CLI::App* app, int& into) {
  return app->add_option("-t,--threads", into, "CPU threads (0 = all cores)")
      ->check(whole_number(0, 1024));
}

void add_model_options(CLI::App* app, ModelFlags& f, bool clip_sampling, bool labels) {
  add_weights_option(app, f.opts.weights);
  app->add_option("-f,--frames", f.opts.frames,
                  "frames per video (default: the checkpoint's own T; others resample the "
                  "temporal position embedding)")
      ->check(whole_number(1, 4096));
  add_device_option(app, f.opts.device);
  add_precision_option(app, f.precision);
  add_threads_option(app, f.opts.threads);
  if (clip_sampling) {
    app->add_option("--sampling", f.sampling,
                    "uniform: T segment centres over the whole video; reference: the paper's "
                    "protocol (T/10 fps from the start)")
        ->check(CLI::IsMember({"uniform", "reference"}))
        ->capture_default_str();
    app->add_option("--seek", f.seek,
                    "exact: the sampled frames themselves; keyframe: for each, the key frame at "
                    "or before it (much faster on long videos, positions shift)")
        ->check(CLI::IsMember({"exact", "keyframe"}))
        ->capture_default_str();
  }
  if (labels)
    app->add_option("--labels", f.opts.labels,
                    "class names, one a line (default: models/kinetics400_labels.txt)")
        ->check(non_empty);
}

void add_top_k_option(CLI::App* app, ModelFlags& f) {
  app->add_option("-k,--top-k", f.opts.top_k, "how many labels to report")
      ->check(whole_number(1, 100000))
      ->capture_default_str();
}

ModelOptions finish_model_options(const ModelFlags& f) {
  ModelOptions o = f.opts;
  o.precision = parse_precision(f.precision);
  o.sampling = parse_sampling(f.sampling);
  o.seek = parse_seek(f.seek);
  return o;
}

CLI::Option* add_format_option(CLI::App* app, std::string& into,
                               const std::vector<std::string>& choices, const std::string& help,
                               bool show_default) {
  CLI::Option* option = app->add_option("--format", into, help)->check(CLI::IsMember(choices));
  return show_default ? option->capture_default_str() : option;
}

CLI::Option* add_logits_flag(CLI::App* app, bool& into, const std::string& help) {
  return app->add_flag("--logits", into, help);
}

void add_refused_option(CLI::App* app, const std::string& name, std::string& into) {
  app->add_option(name, into)->group("");  // group "": hidden
  app->formatter(std::make_shared<HelpFormatter>());
}

std::string exit_code_help(std::initializer_list<Exit> codes,
                           std::initializer_list<std::pair<Exit, const char*>> meanings) {
  static const std::pair<Exit, const char*> kRows[] = {
      {Exit::kOk, "success"},
      {Exit::kInternal, "internal error (a bug: please report it)"},
      {Exit::kUsage, "usage error (bad command line, or an output that cannot be written)"},
      {Exit::kInput, "input error (video or folder missing, unreadable or undecodable)"},
      {Exit::kModel, "model error (weights or labels missing, corrupt or mismatched)"},
      {Exit::kDevice, "device error (requested device or precision not available)"},
      {Exit::kPartial, "some inputs failed, the others were done (batch, eval)"},
      {Exit::kInterrupted, "interrupted (SIGINT/SIGTERM)"},
  };
  std::string text = "Exit codes:\n";
  for (auto [code, meaning] : kRows) {
    if (codes.size() > 0 && std::find(codes.begin(), codes.end(), code) == codes.end()) continue;
    for (const auto& [own_code, own_meaning] : meanings)
      if (own_code == code) meaning = own_meaning;
    const std::string number = std::to_string(static_cast<int>(code));
    text += "  " + number + std::string(5 - number.size(), ' ') + meaning + "\n";
  }
  return text;
}

}  // namespace stam::cli
