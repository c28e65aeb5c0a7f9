#pragma once
// stam bench: model latency against frames per video on this machine, next to the floor that
// its fastest matrix multiply sets, and STAM's published accuracy at each frame count.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "device.hpp"
#include "model/model.hpp"
#include "model/precision.hpp"

namespace stam {

struct BenchOptions {
  std::vector<int64_t> frames{4, 8, 16, 32, 64};
  int iters = 5;
  int warmup = 1;
  int64_t batch = 1;    // videos per forward
  std::string weights;  // "" = STAM-16's architecture with random weights
  std::string video;    // also time reading this file, alone and beside the model
  std::string device = "auto";
  Precision precision = Precision::kAuto;
  int threads = 0;  // 0 = all usable cores
};

struct SystemInfo {
  std::string cpu;
  std::vector<std::string> cpu_features;
  int threads = 0;
  std::string libtorch, opencv;
  std::string device, precision;
  std::string precision_reason;  // "requested", or what --precision auto measured
  std::string gemm_backend;      // what the model's products run on
  std::string blas;              // LibTorch's own BLAS (OpenBLAS and its kernels)
  std::string gemm_shape;        // the product that ran fastest, "1576x768 by 768x3072"
  // Best rates over the run of the model's large products (qkv, fc1, fc2 over one pass of frames;
  // timed before the first round and again in every round, so that a slow spell at one moment
  // does not lower the floor): on gemm_backend, and through the BLAS (fp32 on CPU only, else not
  // timed).
  double gemm_gflops = 0;
  std::optional<double> blas_gemm_gflops;
  double floor_gflops = 0;  // the faster of the two: what the floor is computed from
};

struct BenchRow {
  int64_t frames = 0, batch = 1;
  double median_ms = 0, p90_ms = 0, min_ms = 0;  // model forward, whole batch
  double spatial_ms = 0, temporal_ms = 0;        // medians of the two stages
  double videos_per_s = 0, frames_per_s = 0;
  double gflop = 0;                      // per video
  double gflop_per_s = 0;                // of the whole forward (batch videos)
  double floor_ms = 0;                   // the forward's GFLOP at the system's floor rate
  std::optional<double> published_top1;  // Kinetics-400 top-1 of STAM at this frame count
  // With --video, medians over the rounds: reading the video (decode, preprocess), and one
  // forward with that read beside it, as classify and batch read the next video, timed until
  // both are done.
  std::optional<double> decode_ms, preprocess_ms, with_read_ms;
};

struct BenchReport {
  SystemInfo system;
  std::vector<BenchRow> rows;
};

// Runs the benchmark; `progress` gets one line per finished frame count.
BenchReport run_bench(const BenchOptions& options,
                      const std::function<void(const BenchRow&)>& progress = {});

// Published Kinetics-400 top-1 (%) of STAM-8/16/32/64 (the official README), else nullopt.
std::optional<double> published_top1(int64_t frames);

// Parses "4,8,16": positive, at most 4096, no duplicates. Throws UsageError.
std::vector<int64_t> parse_frame_list(const std::string& text);

// Renderings of a report.
nlohmann::ordered_json bench_json(const BenchReport& r);
std::string bench_text(const BenchReport& r);
std::string bench_csv(const BenchReport& r);
// Latency and videos/s against frames, each point labelled with its published top-1; the
// format follows the extension (.svg or .png). Throws UsageError for other extensions, Error
// when the file cannot be written.
void write_bench_plot(const BenchReport& r, const std::string& path);

}  // namespace stam
