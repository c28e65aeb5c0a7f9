#include "pipeline.hpp"

#include <ATen/Parallel.h>
#include <c10/core/DeviceGuard.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "checkpoint/checkpoint.hpp"
#include "cpu.hpp"
#include "decode/decode.hpp"
#include "labels.hpp"
#include "model/linear.hpp"
#include "preprocess.hpp"
#include "stam/error.hpp"
#include "util/text.hpp"

namespace stam {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

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

// An empty host tensor of uint8 frames bound for `device`: pinned, when it is a GPU, for
// asynchronous uploads. Pinned memory belongs to the current GPU's context; on a thread of our
// own that is GPU 0, which would get a context (hundreds of MB) of its own in a run on another
// GPU, so the model's GPU is made current for the allocation.
torch::Tensor frames_buffer(at::IntArrayRef sizes, torch::Device device) {
  c10::OptionalDeviceGuard guard;
  if (device.is_cuda()) guard.reset_device(device);
  return torch::empty(sizes,
                      torch::TensorOptions().dtype(torch::kByte).pinned_memory(device.is_cuda()));
}

}  // namespace

// ---------------------------------------------------------------- clip reader

ClipReader::ClipReader(int64_t frames, int64_t image_size, Sampling sampling, Seek seek,
                       torch::Device device)
    : frames_(frames), image_size_(image_size), sampling_(sampling), seek_(seek), device_(device) {}

Clip ClipReader::read(const std::string& input) const {
  Clip clip;
  clip.input = input;
  auto t0 = Clock::now();
  const int size = static_cast<int>(image_size_);
  VideoFrames frames = read_frames(input, frames_, sampling_, seek_, [size](const cv::Mat& rgb) {
    return preprocess_frame(rgb, size);
  });
  clip.timings.decode_ms = ms_since(t0) - frames.transform_ms;
  for (const auto& w : frames.warnings) spdlog::warn("{}: {}", path_line(input), w);
  spdlog::debug("{}: decoded {} frames in {:.1f} ms ({}; {} frames{}, {}x{})", input,
                frames.images.size(), clip.timings.decode_ms,
                is_frames_folder(input) ? "frames folder"
                : frames.seeked         ? "read on, seeking across long gaps"
                                        : "read sequentially",
                frames.frame_count, frames.fps > 0 ? fmt::format(" at {:.3g} fps", frames.fps) : "",
                frames.width, frames.height);
  spdlog::trace("{}: frame indices {}", input, fmt::join(frames.indices, " "));

  t0 = Clock::now();
  clip.pixels = stack(frames.images);
  clip.timings.preprocess_ms = frames.transform_ms + ms_since(t0);
  clip.frame_indices = std::move(frames.indices);
  clip.frame_count = frames.frame_count;
  clip.fps = frames.fps;
  clip.warnings = std::move(frames.warnings);
  frames.images.clear();
  frames.images.shrink_to_fit();
  // The decoder's buffers are free now; hand their pages back rather than carry them through
  // the model's run (glibc keeps freed memory for reuse, see configure_cpu_runtime()).
  malloc_trim(0);
  return clip;
}

torch::Tensor ClipReader::preprocess(const std::vector<cv::Mat>& rgb) const {
  std::vector<cv::Mat> crops;
  for (const auto& image : rgb) crops.push_back(preprocess_frame(image, int(image_size_)));
  return stack(crops);
}

torch::Tensor ClipReader::stack(const std::vector<cv::Mat>& crops) const {
  const int64_t s = image_size_, n = static_cast<int64_t>(crops.size());
  torch::Tensor pixels = frames_buffer({n, s, s, 3}, device_);
  for (int64_t i = 0; i < n; ++i) {
    cv::Mat dst(static_cast<int>(s), static_cast<int>(s), CV_8UC3, pixels[i].data_ptr());
    crops[static_cast<size_t>(i)].copyTo(dst);
  }
  return pixels;
}

std::unique_ptr<Prefetcher<Clip>> prefetch_clips(const ClipReader& reader,
                                                 std::vector<std::string> inputs) {
  const size_t count = inputs.size();
  return std::make_unique<Prefetcher<Clip>>(count, [reader, inputs = std::move(inputs)](size_t i) {
    lower_thread_priority();  // the prefetch thread's own; the same on every call
    DecodeLease lease;
    return reader.read(inputs[i]);
  });
}

CheckedInputs check_inputs(const std::vector<std::string>& inputs) {
  CheckedInputs checked;
  for (const auto& input : inputs) {
    try {
      check_input(input);
      checked.problems.emplace_back();
      checked.readable.push_back(input);
    } catch (const InputError& e) {
      spdlog::error("{}", e.what());
      checked.problems.emplace_back(e.what());
    }
  }
  return checked;
}

int classify_each(const ModelOptions& options, const std::vector<std::string>& inputs,
                  const OutcomeSink& done) {
  const CheckedInputs checked = check_inputs(inputs);
  const std::vector<std::string>& problems = checked.problems;
  std::unique_ptr<Prefetcher<Clip>> clips;
  std::unique_ptr<Classifier> classifier;
  if (!checked.readable.empty())
    classifier = std::make_unique<Classifier>(options, [&](const ClipReader& reader) {
      clips = prefetch_clips(reader, checked.readable);
    });
  int worst = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Outcome outcome{inputs[i], std::nullopt, problems[i], 0};
    try {
      if (!problems[i].empty()) throw InputError(problems[i]);
      outcome.result = std::move(classifier->infer({clips->next()}).front());
    } catch (const Error& e) {
      if (problems[i].empty()) spdlog::error("{}", e.what());  // else reported already
      outcome.error = e.what();
      outcome.exit_code = static_cast<int>(e.code());
      worst = std::max(worst, outcome.exit_code);
    }
    done(outcome, classifier.get());
  }
  return worst;
}

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

torch::Tensor Classifier::preprocess(const std::vector<cv::Mat>& rgb) const {
  return impl_->reader->preprocess(rgb);
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
