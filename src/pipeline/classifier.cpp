// Classifier: the one door to the model (load, encode, classify, top-k).
#include "pipeline/pipeline.hpp"

#include <ATen/Parallel.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "checkpoint/checkpoint.hpp"
#include "cpu.hpp"
#include "labels.hpp"
#include "model/linear.hpp"
#include "stam/error.hpp"
#include "util/clock.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

std::vector<Prediction> top_predictions(const torch::Tensor& probs, int64_t k,
                                        const std::vector<std::string>& labels) {
  auto [values, indices] = probs.topk(std::min<int64_t>(k, probs.size(0)));
  std::vector<Prediction> out;
  for (int64_t i = 0; i < values.size(0); ++i) {
    const int64_t idx = indices[i].item<int64_t>();
    out.push_back({idx, labels[static_cast<size_t>(idx)], values[i].item<double>()});
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- classifier

struct Classifier::Impl {
  ModelOptions opts;
  std::vector<std::string> labels;
  torch::Device device{torch::kCPU};
  c10::ScalarType dtype = torch::kFloat;
  StamConfig config;
  std::optional<ClipReader> reader;  // set once the config is known
  Stam model{nullptr};
  double load_ms = 0;
};

Classifier::Classifier(const ModelOptions& options, const ReaderReady& reader_ready)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opts = options;
  LoadedModel loaded = load_model(options, [&](const LoadedModel& known) {
    m.reader.emplace(known.config.frames, known.config.image_size, options.sampling, options.seek,
                     known.device);
    if (reader_ready) reader_ready(*m.reader);
  });
  const PrecisionChoice& precision = loaded.precision;
  const std::string& weights = loaded.weights;
  m.opts.precision = precision.precision;
  m.opts.weights = weights;  // resolved: named when the scores it gives are not numbers
  m.dtype = scalar_type(precision.precision);
  m.device = loaded.device;
  m.config = loaded.config;
  m.labels = std::move(loaded.labels);
  m.model = loaded.model;
  m.load_ms = loaded.load_ms;
  spdlog::info("loaded {} ({}) on {} {} in {:.0f} ms, {} threads", weights, m.config.describe(),
               device_name(), to_string(m.opts.precision), m.load_ms, at::get_num_threads());
  spdlog::debug("precision: {} ({})", to_string(m.opts.precision), precision.reason);
  if (const auto& ckpt = loaded.checkpoint)
    spdlog::debug("checkpoint: {} container, state dict at '{}', {} tensors", ckpt->format(),
                  ckpt->location(), ckpt->entries().size());
  spdlog::debug("products: {}; LibTorch's BLAS: {}", linear_backend(m.device, m.dtype),
                gemm_backend().describe());
  spdlog::debug("cpu: {} ({}), {} threads of {} usable cores", cpu_info().model,
                fmt::join(cpu_info().features, " "), at::get_num_threads(), usable_cpu_cores());
}

Classifier::~Classifier() = default;

Clip Classifier::prepare(const std::string& input) const {
  return impl_->reader->read(input);
}

torch::Tensor Classifier::join_frames(const std::vector<torch::Tensor>& parts) const {
  if (parts.size() == 1) return parts.front();
  std::vector<int64_t> sizes = parts.front().sizes().vec();
  for (size_t i = 1; i < parts.size(); ++i) sizes[0] += parts[i].size(0);
  torch::Tensor out = frames_buffer(sizes, impl_->device);
  return torch::cat_out(out, parts, 0);
}

std::vector<Result> Classifier::infer(const std::vector<Clip>& clips) {
  Impl& m = *impl_;
  if (clips.empty()) return {};
  c10::InferenceMode guard;
  std::vector<torch::Tensor> pixels;
  for (const auto& c : clips) {
    if (c.pixels.size(0) != m.config.frames)
      throw InputError(c.input + ": clip has " + std::to_string(c.pixels.size(0)) +
                       " frames, the model runs " + std::to_string(m.config.frames));
    pixels.push_back(c.pixels);
  }
  const auto b = static_cast<int64_t>(clips.size());

  auto t0 = Clock::now();
  // One host buffer, so the upload can be asynchronous; named, so that it lives until the
  // synchronize() below, when the copy is done.
  const torch::Tensor host_frames = join_frames(pixels);
  auto frame_emb = encode_frames(host_frames);
  stam::synchronize(m.device);
  const double spatial_ms = ms_since(t0);

  t0 = Clock::now();
  auto logits = this->logits(encode_clips(frame_emb.view({b, m.config.frames, -1})));
  const double temporal_ms = ms_since(t0);
  spdlog::debug("model: {} clip{} x {} frames: spatial {:.1f} ms, temporal + head {:.1f} ms", b,
                b == 1 ? "" : "s", m.config.frames, spatial_ms, temporal_ms);

  // A NaN or infinity in the weights spreads to every score, which would pass for a result (JSON
  // null, CSV -nan): the input gets an error instead. A batch fails whole; batch retries its
  // clips one at a time.
  const torch::Tensor finite = torch::isfinite(logits).all(1);
  for (int64_t i = 0; i < b; ++i)
    if (!finite[i].item<bool>())
      throw ModelError(clips[static_cast<size_t>(i)].input +
                       ": the model produced non-finite scores (NaN or infinity): its weights (" +
                       m.opts.weights + ") may be damaged" +
                       (m.opts.precision == Precision::kFp16
                            ? ", or fp16 overflowed (try --precision fp32)"
                            : ""));

  std::vector<Result> results;
  for (int64_t i = 0; i < b; ++i) {
    const Clip& c = clips[static_cast<size_t>(i)];
    Result r;
    r.input = c.input;
    r.frames = m.config.frames;
    r.frame_indices = c.frame_indices;
    r.top_k = top_k(logits[i]);
    auto row = logits[i].contiguous();
    r.logits.assign(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
    r.timings = c.timings;
    r.timings.spatial_ms = spatial_ms / static_cast<double>(b);
    r.timings.temporal_ms = temporal_ms / static_cast<double>(b);
    r.timings.total_ms = r.timings.decode_ms + r.timings.preprocess_ms + r.timings.spatial_ms +
                         r.timings.temporal_ms;
    r.device = device_name();
    r.precision = to_string(m.opts.precision);
    r.warnings = c.warnings;
    results.push_back(std::move(r));
  }
  return results;
}

Result Classifier::classify(const std::string& input) {
  const auto t0 = Clock::now();
  Result r = std::move(infer({prepare(input)}).front());
  r.timings.total_ms = ms_since(t0);
  return r;
}

torch::Tensor Classifier::encode_frames(const torch::Tensor& pixels) {
  Impl& m = *impl_;
  c10::InferenceMode guard;
  const auto device_pixels = pixels.to(m.device, /*non_blocking=*/true);
  // ToTensor(): HWC uint8 -> CHW float in [0, 1]; then the model's dtype, one chunk at a time.
  return m.model->encode_frames(device_pixels, [&](const torch::Tensor& chunk) {
    const auto x = chunk.permute({0, 3, 1, 2});
    auto images = torch::empty(x.sizes(), x.options().dtype(torch::kFloat));
    images.copy_(x).div_(255.0);
    return images.to(m.dtype);
  });
}

torch::Tensor Classifier::encode_clips(const torch::Tensor& frame_embeddings) {
  c10::InferenceMode guard;
  return impl_->model->encode_clip(frame_embeddings);
}

torch::Tensor Classifier::logits(const torch::Tensor& clip_embeddings) {
  c10::InferenceMode guard;
  return impl_->model->classify(clip_embeddings).to(torch::kCPU, torch::kFloat);
}

std::vector<Prediction> Classifier::top_k(const torch::Tensor& logits_row) const {
  return top_k(logits_row, impl_->opts.top_k);
}

std::vector<Prediction> Classifier::top_k(const torch::Tensor& logits_row, int64_t k) const {
  if (!impl_->opts.with_labels) throw std::logic_error("Classifier::top_k: loaded without labels");
  c10::InferenceMode guard;
  return top_predictions(logits_row.softmax(0), k, impl_->labels);
}

void Classifier::synchronize() const {
  stam::synchronize(impl_->device);
}

const StamConfig& Classifier::config() const {
  return impl_->config;
}
const std::vector<std::string>& Classifier::labels() const {
  return impl_->labels;
}
torch::Device Classifier::device() const {
  return impl_->device;
}
std::string Classifier::device_name() const {
  return impl_->device.str();
}
Precision Classifier::precision() const {
  return impl_->opts.precision;
}
double Classifier::load_ms() const {
  return impl_->load_ms;
}

}  // namespace stam
