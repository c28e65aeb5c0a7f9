#pragma once
// stam's library: recognise human actions in videos with STAM (Kinetics-400), from C++.
//
// What a program calls, each documented here: fill ModelOptions, construct a Classifier (it finds,
// checks and loads the weights and labels once), then classify() inputs, or run the model's
// stages one at a time (encode_frames, encode_clips, logits, top_k) to reuse embeddings. Every
// failure throws an stam::Error (stam/error.hpp) whose code() is the CLI's exit code.
//
//   stam::ModelOptions options;
//   options.weights = "models/stam_16.pth";
//   stam::Classifier model(options);
//   for (const stam::Prediction& p : model.classify("clip.mp4").top_k)
//     std::cout << p.label << " " << p.score << "\n";
//
// Everything else (decoding, the model's modules, batch, output formats) is internal, under src/.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stam/error.hpp"

namespace stam {

class Checkpoint;

// ---------------------------------------------------------------- choices a run makes

enum class Sampling {
  kUniform,    // T frames at the centres of T equal segments of the whole video
  kReference,  // the paper's evaluation protocol: T frames at T/10 fps from the start
};

// Parses "uniform" / "reference"; throws UsageError otherwise.
Sampling parse_sampling(const std::string& name);
std::string to_string(Sampling s);

// How the sampled frames of a video file are reached.
enum class Seek {
  kExact,     // the sampled frames themselves, the pixels a sequential read gives
  kKeyframe,  // for each sampled position the key frame at or before it, decoded alone (as
              // MMAction2's "efficient" PyAV mode does); `indices` are the key frames' positions
};

// Parses "exact" / "keyframe"; throws UsageError otherwise.
Seek parse_seek(const std::string& name);
// The name parse_seek() takes.
std::string to_string(Seek seek);

// kAuto is resolved by choose_precision() before a model is built.
enum class Precision { kFp32, kBf16, kFp16, kAuto };

Precision parse_precision(const std::string& name);  // throws UsageError
std::string to_string(Precision p);

// ---------------------------------------------------------------- the model

// The architecture, read from a checkpoint's tensor shapes (defaults: STAM-16, ViT-B/16).
struct StamConfig {
  int64_t image_size = 224;
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t embed_dim = 768;
  int64_t depth = 12;
  int64_t num_heads = 12;  // spatial heads; the checkpoint does not store it (head dim 64)
  int64_t mlp_hidden = 3072;
  int64_t frames = 16;  // temporal position embedding rows - 1
  int64_t temporal_layers = 6;
  int64_t temporal_heads = 8;  // the reference fixes nn.TransformerEncoderLayer(nhead=8)
  int64_t temporal_ffn = 2048;
  int64_t num_classes = 400;
  double eps = 1e-5;

  // Every dimension read from the checkpoint's tensor shapes. Throws ModelError if the
  // checkpoint is not a STAM state dict.
  static StamConfig from_checkpoint(const Checkpoint& ckpt);
  std::string describe() const;
};

// What to load and how to run it. Empty paths mean the default files (models/stam_16.pth and
// models/kinetics400_labels.txt, looked for in $STAM_MODELS_DIR, ./models, ~/.local/share/stam/
// models, beside the binary, the install prefix).
struct ModelOptions {
  std::string weights;       // checkpoint path ("" = default location)
  bool with_weights = true;  // false (bench without --weights): STAM-16's architecture, random
  std::string labels;        // labels path ("" = default location)
  bool with_labels = true;   // false (embed): no labels file is read; top_k() is then refused
  int64_t frames = 0;        // 0 = the checkpoint's own T
  int64_t top_k = 5;
  std::string device = "auto";
  Precision precision = Precision::kFp32;
  int threads = 0;  // 0 = LibTorch's default
  Sampling sampling = Sampling::kUniform;
  Seek seek = Seek::kExact;
};

// ---------------------------------------------------------------- inputs and results

struct Timings {
  double decode_ms = 0, preprocess_ms = 0, spatial_ms = 0, temporal_ms = 0, total_ms = 0;
};

// A decoded and preprocessed input, ready for the model.
struct Clip {
  std::string input;
  torch::Tensor pixels;  // (T, S, S, 3) uint8 RGB (HWC as decoded), CPU, pinned for CUDA
  std::vector<int64_t> frame_indices;
  int64_t frame_count = 0;
  double fps = 0;
  Timings timings;                    // decode and preprocess filled
  std::vector<std::string> warnings;  // VideoFrames::warnings
};

struct Prediction {
  int64_t index;
  std::string label;
  double score;  // softmax probability
};

struct Result {
  std::string input;
  int64_t frames = 0;
  std::vector<int64_t> frame_indices;
  std::vector<Prediction> top_k;
  std::vector<float> logits;
  Timings timings;
  std::string device;
  std::string precision;
  std::vector<std::string> warnings;  // the clip's: what the result rests on (decode.hpp)
};

// Decodes, samples and preprocesses inputs into the clips one model takes. A small value: a copy
// can go to another thread, and outlives the Classifier it came from. Thread-safe.
class ClipReader {
 public:
  // Frames for a model on `device`: in pinned memory when it is a GPU (asynchronous uploads).
  ClipReader(int64_t frames, int64_t image_size, Sampling sampling, Seek seek,
             torch::Device device);

  // Decode, sample and preprocess one input; each frame is resized and cropped as soon as it is
  // decoded. An input named *.npy is an array of decoded frames, (N, H, W, 3) uint8 RGB: frames
  // already S x S are used as they are, others are resized and cropped; N other than T is
  // sampled as a video of N frames would be. A build without video (STAM_VIDEO=OFF) reads only
  // such arrays, of frames already S x S. Throws InputError.
  Clip read(const std::string& input) const;

 private:
  int64_t frames_, image_size_;
  Sampling sampling_;
  Seek seek_;
  torch::Device device_;
};

class Classifier {
 public:
  // Called with the model's ClipReader once the input shape is known and the labels are read,
  // before the weights load (most of the load time), so that inputs can be prepared meanwhile.
  using ReaderReady = std::function<void(const ClipReader&)>;

  // Loads labels and weights and moves the model to the device/precision. Throws ModelError,
  // DeviceError or UsageError (also after `reader_ready` was called).
  explicit Classifier(const ModelOptions& options, const ReaderReady& reader_ready = {});
  ~Classifier();

  // Decode, sample and preprocess one input (ClipReader::read). Thread-safe. Throws InputError.
  Clip prepare(const std::string& input) const;
  // Preprocessed frames ((n, S, S, 3) uint8 each, from clips) as one input for
  // encode_frames(), in pinned memory allocated in the model's GPU context when it is a GPU.
  torch::Tensor join_frames(const std::vector<torch::Tensor>& parts) const;
  // Runs clips (same T) through the model as one batch.
  std::vector<Result> infer(const std::vector<Clip>& clips);
  // prepare + infer for one input.
  Result classify(const std::string& input);

  // The model's stages one at a time, for callers that reuse frame embeddings (timeline) or
  // export them (embed). Frame embeddings stay in the model's dtype, clip embeddings are fp32
  // (the final norm's), both on the model's device; call synchronize() before reading a clock.
  // (N, S, S, 3) uint8 preprocessed frames -> (N, D) spatial CLS embeddings, one per frame.
  torch::Tensor encode_frames(const torch::Tensor& pixels);
  // (B, T, D) frame embeddings -> (B, D) temporal CLS embeddings (after the final norm).
  torch::Tensor encode_clips(const torch::Tensor& frame_embeddings);
  // (B, D) clip embeddings -> (B, classes) logits, float32 on the CPU.
  torch::Tensor logits(const torch::Tensor& clip_embeddings);
  // The top-k labels (softmax scores) of one row of logits.
  std::vector<Prediction> top_k(const torch::Tensor& logits_row) const;
  // The same with `k` labels (at most the class count) instead of the options' top_k.
  std::vector<Prediction> top_k(const torch::Tensor& logits_row, int64_t k) const;

  // Waits for the work queued on the model's device (a GPU runs it asynchronously).
  void synchronize() const;

  const StamConfig& config() const;
  const std::vector<std::string>& labels() const;
  torch::Device device() const;
  std::string device_name() const;
  Precision precision() const;  // `auto` resolved
  double load_ms() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stam
