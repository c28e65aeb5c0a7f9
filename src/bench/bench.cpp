// Running the benchmark: the system probe, the GEMM floor and the timed forwards.
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>
#if STAM_VIDEO
#include <opencv2/core/version.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <set>
#include <sstream>

#include "bench/bench.hpp"
#include "cpu.hpp"
#include "model/linear.hpp"
#include "pipeline/pipeline.hpp"
#include "stam/error.hpp"

namespace stam {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Nearest-rank percentile of unsorted samples.
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::min(v.size(), std::max<size_t>(rank, 1)) - 1];
}

struct GemmShape {
  int64_t m, k, n;
  std::string text() const {
    return std::to_string(m) + "x" + std::to_string(k) + " by " + std::to_string(k) + "x" +
           std::to_string(n);
  }
};

// The model's large products as its spatial encoder runs them, over the tokens of one pass of
// frames (16, or the model's frame_chunk when smaller: 8 on a CPU): the attention's qkv layer and
// the two MLP layers.
std::vector<GemmShape> floor_products(const Stam& model) {
  const StamConfig& c = model->config;
  const int64_t grid = c.image_size / c.patch_size;
  const int64_t rows = std::min<int64_t>(16, model->frame_chunk) * (grid * grid + 1);
  return {{rows, c.embed_dim, 3 * c.embed_dim},
          {rows, c.embed_dim, c.mlp_hidden},
          {rows, c.mlp_hidden, c.embed_dim}};
}

// The floor's products on the model's backend and (fp32 on CPU) through the BLAS, timed before
// the first round and again in every round beside the forwards. Each backend keeps its best rate
// over all the products: a floor timed once, in a slow spell, or on the model's slowest shape,
// would let the model run "faster than the floor".
class Floor {
 public:
  Floor(const std::vector<GemmShape>& shapes, const torch::Device& device, c10::ScalarType dtype)
      : shapes_(shapes) {
    const bool with_blas = device.is_cpu() && dtype == torch::kFloat;
    for (const GemmShape& g : shapes) {
      backend_.emplace_back(g.m, g.k, g.n, device, dtype, false);
      backend_.back().run();  // warm-up: kernel generation and first touch
      if (!with_blas) continue;
      blas_.emplace_back(g.m, g.k, g.n, device, dtype, true);
      blas_.back().run();
    }
  }

  // `reps` timed calls of each product on each backend, taking turns.
  void measure(int reps) {
    for (int i = 0; i < reps; ++i) {
      for (size_t p = 0; p < shapes_.size(); ++p) {
        const double rate = backend_[p].run();
        if (rate > backend_best_) {
          backend_best_ = rate;
          best_shape_ = p;
        }
        if (!blas_.empty()) blas_best_ = std::max(blas_best_, blas_[p].run());
      }
    }
  }

  void report(SystemInfo& s) const {
    s.gemm_shape = shapes_[best_shape_].text();
    s.gemm_gflops = backend_best_;
    s.blas_gemm_gflops = blas_.empty() ? std::nullopt : std::optional<double>(blas_best_);
    s.floor_gflops = std::max(backend_best_, blas_best_);
  }

 private:
  std::vector<GemmShape> shapes_;
  std::vector<GemmProbe> backend_, blas_;
  double backend_best_ = 0, blas_best_ = 0;
  size_t best_shape_ = 0;
};

SystemInfo probe_system(const torch::Device& device, c10::ScalarType dtype,
                        const PrecisionChoice& precision) {
  SystemInfo s;
  s.cpu = cpu_info().model;
  s.cpu_features = cpu_info().features;
  s.threads = at::get_num_threads();
  s.libtorch = TORCH_VERSION;
#if STAM_VIDEO
  s.opencv = CV_VERSION;
#else
  s.opencv = "none (STAM_VIDEO=OFF)";
#endif
  s.device = device.str();
  s.precision = to_string(precision.precision);
  s.precision_reason = precision.reason;
  s.gemm_backend = linear_backend(device, dtype);
  s.blas = gemm_backend().describe();
  return s;
}

// One frame count of the sweep: its input, its temporal position embedding, its timings and,
// with --video, the reader of that many frames and its timings.
struct Sweep {
  int64_t frames;
  torch::Tensor input, pos_embed;
  std::vector<double> total, spatial, temporal;
  std::optional<ClipReader> reader;
  std::vector<double> decode, preprocess, with_read;
};

Sweep make_sweep(const Stam& model, const torch::Tensor& trained_pos, int64_t frames, int64_t batch,
                 const torch::Device& device, c10::ScalarType dtype) {
  const StamConfig& c = model->config;
  return {frames,
          torch::rand({batch * frames, c.in_chans, c.image_size, c.image_size},
                      torch::TensorOptions().device(device).dtype(dtype)),
          resample_temporal_pos_embed(trained_pos, frames),
          {},
          {},
          {},
          {},
          {},
          {},
          {}};
}

// One forward of `s`'s input; its times are kept when `record`.
void forward(Stam& model, Sweep& s, int64_t batch, const torch::Device& device, bool record) {
  torch::NoGradGuard no_grad;
  model->aggregate->pos_embed.set_data(s.pos_embed);
  model->config.frames = s.frames;
  const auto t0 = Clock::now();
  auto emb = model->encode_frames(s.input);
  synchronize(device);
  const auto t1 = Clock::now();
  auto logits = model->classify(model->encode_clip(emb.view({batch, s.frames, -1})));
  synchronize(device);
  const auto t2 = Clock::now();
  if (!record) return;
  s.spatial.push_back(ms_between(t0, t1));
  s.temporal.push_back(ms_between(t1, t2));
  s.total.push_back(ms_between(t0, t2));
}

// The video read alone, then one forward with the read beside it on another thread, as
// classify and batch read the next video while the model runs; their times are kept when
// `record`.
void time_read(Stam& model, Sweep& s, const std::string& video, int64_t batch,
               const torch::Device& device, bool record) {
  const Timings alone = s.reader->read(video).timings;
  const auto t0 = Clock::now();
  const auto beside = prefetch_clips(*s.reader, {video});
  forward(model, s, batch, device, false);
  beside->next();
  const double with_read = ms_between(t0, Clock::now());
  if (!record) return;
  s.decode.push_back(alone.decode_ms);
  s.preprocess.push_back(alone.preprocess_ms);
  s.with_read.push_back(with_read);
}

BenchRow summarise(const Sweep& s, const StamConfig& c, int64_t batch, double floor_gflops) {
  BenchRow r;
  r.frames = s.frames;
  r.batch = batch;
  r.median_ms = percentile(s.total, 50);
  r.p90_ms = percentile(s.total, 90);
  r.min_ms = *std::min_element(s.total.begin(), s.total.end());
  r.spatial_ms = percentile(s.spatial, 50);
  r.temporal_ms = percentile(s.temporal, 50);
  r.videos_per_s = 1e3 * static_cast<double>(batch) / r.median_ms;
  r.frames_per_s = r.videos_per_s * static_cast<double>(s.frames);
  r.gflop = gflop_per_video(c, s.frames);
  const double forward_gflop = r.gflop * static_cast<double>(batch);
  r.gflop_per_s = forward_gflop / (r.median_ms / 1e3);
  r.floor_ms = forward_gflop / floor_gflops * 1e3;
  r.published_top1 = published_top1(s.frames);
  if (s.reader) {
    r.decode_ms = percentile(s.decode, 50);
    r.preprocess_ms = percentile(s.preprocess, 50);
    r.with_read_ms = percentile(s.with_read, 50);
  }
  return r;
}

}  // namespace

std::optional<double> published_top1(int64_t frames) {
  switch (frames) {
    case 8:
      return 77.5;
    case 16:
      return 79.3;
    case 32:
      return 79.95;
    case 64:
      return 80.5;
    default:
      return std::nullopt;
  }
}

std::vector<int64_t> parse_frame_list(const std::string& text) {
  std::vector<int64_t> out;
  std::set<int64_t> seen;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const bool digits = !item.empty() && item.size() <= 4 &&
                        item.find_first_not_of("0123456789") == std::string::npos;
    const int64_t v = digits ? std::stoll(item) : 0;
    if (v < 1 || v > 4096)
      throw UsageError("--frames: '" + item +
                       "' is not a frame count from 1 to 4096 (expected "
                       "a list such as 4,8,16,32,64)");
    if (!seen.insert(v).second) throw UsageError("--frames: " + item + " is listed twice");
    out.push_back(v);
  }
  if (out.empty() || text.back() == ',')
    throw UsageError("--frames: expected a list such as 4,8,16,32,64");
  return out;
}

BenchReport run_bench(const BenchOptions& o, const std::function<void(const BenchRow&)>& progress) {
  if (o.iters < 1 || o.warmup < 0 || o.batch < 1 || o.frames.empty())
    throw UsageError("bench needs --iters >= 1, --warmup >= 0, --batch >= 1 and frame counts");
  check_precision(resolve_device(o.device), o.precision);
  if (!o.video.empty())  // one frame read, to fail before the work
    ClipReader(1, StamConfig{}.image_size, Sampling::kUniform, Seek::kExact, torch::kCPU)
        .read(o.video);

  // The model with its weights (random without --weights), in the precision chosen for it.
  ModelOptions options;
  options.weights = o.weights;
  options.with_weights = !o.weights.empty();
  options.with_labels = false;
  options.device = o.device;
  options.precision = o.precision;
  options.threads = o.threads;
  const LoadedModel loaded = load_model(options);
  Stam model = loaded.model;
  const torch::Device device = loaded.device;
  const PrecisionChoice& precision = loaded.precision;
  const c10::ScalarType dtype = scalar_type(precision.precision);
  BenchReport report;
  report.system = probe_system(device, dtype, precision);
  Floor floor(floor_products(model), device, dtype);
  floor.measure(5);
  const torch::Tensor trained_pos = model->aggregate->pos_embed.detach().clone();
  std::vector<Sweep> sweeps;
  for (const int64_t frames : o.frames) {
    sweeps.push_back(make_sweep(model, trained_pos, frames, o.batch, device, dtype));
    if (!o.video.empty())
      sweeps.back().reader.emplace(frames, model->config.image_size, Sampling::kUniform,
                                   Seek::kExact, device);
  }
  // Round by round, one forward of each frame count: a machine whose speed drifts during the
  // run slows every frame count alike, so their ratios hold.
  for (int i = 0; i < o.warmup + o.iters; ++i) {
    spdlog::info("round {} of {}{}", i + 1, o.warmup + o.iters, i < o.warmup ? " (warm-up)" : "");
    for (Sweep& s : sweeps) {
      forward(model, s, o.batch, device, i >= o.warmup);
      if (s.reader) time_read(model, s, o.video, o.batch, device, i >= o.warmup);
    }
    floor.measure(2);
  }
  floor.report(report.system);
  for (const Sweep& s : sweeps) {
    BenchRow row = summarise(s, model->config, o.batch, report.system.floor_gflops);
    if (progress) progress(row);
    report.rows.push_back(row);
  }
  return report;
}

}  // namespace stam
