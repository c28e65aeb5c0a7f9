#pragma once
// From an input path to labelled scores: decode -> sample -> preprocess -> model -> top-k.
// One Classifier holds the model; prepare() is thread-safe and can run on decode workers while
// infer() runs the model.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stam/decode.hpp"
#include "stam/device.hpp"
#include "stam/model.hpp"
#include "model/files.hpp"
#include "model/precision.hpp"
#include "stam/prefetch.hpp"
#include "stam/sample.hpp"

namespace stam {

struct ModelOptions {
  std::string weights;      // checkpoint path ("" = default location)
  std::string labels;       // labels path ("" = default location)
  bool with_labels = true;  // false (embed): no labels file is read; top_k() is then refused
  int64_t frames = 0;       // 0 = the checkpoint's own T
  int64_t top_k = 5;
  std::string device = "auto";
  Precision precision = Precision::kFp32;
  int threads = 0;  // 0 = LibTorch's default
  Sampling sampling = Sampling::kUniform;
  Seek seek = Seek::kExact;
};

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
  // decoded. Throws InputError.
  Clip read(const std::string& input) const;
  // Decoded RGB frames -> the model's input: (N, S, S, 3) uint8, resized and cropped as the
  // reference does, pinned for CUDA.
  torch::Tensor preprocess(const std::vector<cv::Mat>& rgb) const;

 private:
  // Frames already resized and cropped -> the model's input tensor.
  torch::Tensor stack(const std::vector<cv::Mat>& crops) const;

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
  // Decoded RGB frames -> the model's input (ClipReader::preprocess). Thread-safe.
  torch::Tensor preprocess(const std::vector<cv::Mat>& rgb) const;
  // Preprocessed frames ((n, S, S, 3) each, from preprocess() or clips) as one input for
  // encode_frames(), in pinned memory allocated in the model's GPU context when it is a GPU.
  torch::Tensor join_frames(const std::vector<torch::Tensor>& parts) const;
  // Runs clips (same T) through the model as one batch.
  std::vector<Result> infer(const std::vector<Clip>& clips);
  // prepare + infer for one input.
  Result classify(const std::string& input);

  // The model's stages one at a time, for callers that reuse frame embeddings (timeline) or
  // export them (embed). Frame embeddings stay in the model's dtype, clip embeddings are fp32
  // (the final norm's), both on the model's device; call synchronize() before reading a clock.
  // (N, S, S, 3) uint8 from preprocess() -> (N, D) spatial CLS embeddings, one per frame.
  torch::Tensor encode_frames(const torch::Tensor& pixels);
  // (B, T, D) frame embeddings -> (B, D) temporal CLS embeddings (after the final norm).
  torch::Tensor encode_clips(const torch::Tensor& frame_embeddings);
  // (B, D) clip embeddings -> (B, classes) logits, float32 on the CPU.
  torch::Tensor logits(const torch::Tensor& clip_embeddings);
  // The top-k labels (softmax scores) of one row of logits.
  std::vector<Prediction> top_k(const torch::Tensor& logits_row) const;

  // Waits for the work queued on the model's device (a GPU runs it asynchronously).
  void synchronize() const;

  const StamConfig& config() const;
  const std::vector<std::string>& labels() const;
  std::string device_name() const;
  Precision precision() const;  // `auto` resolved
  double load_ms() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads `inputs` in order on a background thread, one ahead of the caller (see Prefetcher): the
// caller runs the model on one clip while the next is decoded.
std::unique_ptr<Prefetcher<Clip>> prefetch_clips(const ClipReader& reader,
                                                 std::vector<std::string> inputs);

}  // namespace stam
