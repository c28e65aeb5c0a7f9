#pragma once
// STAM: a ViT spatial encoder applied to every frame, a post-norm temporal transformer over the
// frame embeddings, and a linear head. Submodule and parameter names mirror the official
// checkpoint keys, so loading is a lookup by name.
//
// The model's code is dtype- and device-agnostic: it computes in whatever dtype and on whatever
// device its parameters live; callers choose both with `to()` before or after loading.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

#include "stam/stam.hpp"

#include "model/linear.hpp"

namespace stam {

class Checkpoint;

// ---- layers with uninitialised parameters: loading or init_random() fills them ----
struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x, Activation act = Activation::kNone);
  void forward_into(torch::Tensor& dst, const torch::Tensor& x, Activation act = Activation::kNone);
  // residual += forward(x), in place: the sum is fused into the product where possible.
  void add_to(torch::Tensor& residual, const torch::Tensor& x);
  torch::Tensor weight, bias;
  PackedWeight packed;  // weight in the product's own layout, for forward_into and add_to
};
TORCH_MODULE(Linear);

struct LayerNormImpl : torch::nn::Module {
  LayerNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);    // in x's dtype
  torch::Tensor normalize(const torch::Tensor& x);  // in the parameters' dtype
  torch::Tensor weight, bias;
  double eps;
};
TORCH_MODULE(LayerNorm);

// ---- spatial encoder (timm-style ViT) ----
struct PatchProjImpl : torch::nn::Module {  // Conv2d with stride = kernel = patch size
  explicit PatchProjImpl(const StamConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t patch;
};
TORCH_MODULE(PatchProj);

struct PatchEmbedImpl : torch::nn::Module {
  explicit PatchEmbedImpl(const StamConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // (N,C,H,W) -> (N, patches, D)
  PatchProj proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

// Memory for the temporaries of one chunk's pass through the blocks, allocated once and reused by
// every block: the qkv projections and the attention output, then the MLP's hidden layer in the
// same bytes. Allocating them afresh in each block fragments the heap by tens of MB.
struct BlockScratch {
  // Points qkv, attn_out and hidden at memory for blocks whose input x is (N, L, D), allocating
  // only when the buffer is smaller than that.
  void fit(const torch::Tensor& x, int64_t mlp_hidden);
  torch::Tensor buffer, qkv, attn_out, hidden;
};

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t dim, int64_t heads);
  // residual += attn(x)
  void add_to(torch::Tensor& residual, const torch::Tensor& x, BlockScratch& scratch);
  int64_t heads;
  Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t hidden);
  // residual += mlp(x)
  void add_to(torch::Tensor& residual, const torch::Tensor& x, BlockScratch& scratch);
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

// Pre-norm residual block; updates x in place.
struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(const StamConfig& c);
  void forward(torch::Tensor& x, BlockScratch& scratch);
  LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

// ---- temporal encoder (PyTorch nn.TransformerEncoderLayer, post-norm, ReLU) ----
struct SelfAttentionImpl : torch::nn::Module {
  SelfAttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);  // (B, L, D)
  int64_t heads;
  torch::Tensor in_proj_weight, in_proj_bias;
  Linear out_proj{nullptr};
};
TORCH_MODULE(SelfAttention);

struct EncoderLayerImpl : torch::nn::Module {
  explicit EncoderLayerImpl(const StamConfig& c);
  torch::Tensor forward(torch::Tensor x);
  SelfAttention self_attn{nullptr};
  Linear linear1{nullptr}, linear2{nullptr};
  LayerNorm norm1{nullptr}, norm2{nullptr};
};
TORCH_MODULE(EncoderLayer);

struct TransformerEncoderImpl : torch::nn::Module {
  explicit TransformerEncoderImpl(const StamConfig& c);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::ModuleList layers;
  LayerNorm norm{nullptr};
};
TORCH_MODULE(TransformerEncoder);

struct TAggregateImpl : torch::nn::Module {
  explicit TAggregateImpl(const StamConfig& c);
  torch::Tensor forward(const torch::Tensor& frames);  // (B, T, D) -> (B, D)
  torch::Tensor cls_token, pos_embed;
  TransformerEncoder transformer_enc{nullptr};
};
TORCH_MODULE(TAggregate);

// ---- the whole model ----
struct StamImpl : torch::nn::Module {
  explicit StamImpl(const StamConfig& c);

  // Spatial encoder, per frame: (N, 3, S, S) in [0, 1] -> (N, D) CLS embeddings. Runs
  // `frame_chunk` frames at a time, so activations stay in cache however many frames come.
  // `prepare`, when given, turns each chunk of `frames` into that input first (e.g. uint8 pixels
  // into the model's dtype), so no converted copy of all the frames ever exists.
  using PrepareChunk = std::function<torch::Tensor(const torch::Tensor& frames)>;
  torch::Tensor encode_frames(const torch::Tensor& frames, const PrepareChunk& prepare = nullptr);
  // Temporal encoder, per window: (B, T, D) -> (B, D), in the final norm's dtype (fp32 after
  // place()).
  torch::Tensor encode_clip(const torch::Tensor& frame_embeddings);
  // Head: (B, D) -> (B, classes) logits.
  torch::Tensor classify(const torch::Tensor& clip_embedding);
  // All three: (B*T, 3, S, S) with each video's T frames contiguous -> (B, classes).
  torch::Tensor forward(const torch::Tensor& images);

  StamConfig config;
  int64_t frame_chunk = 8;
  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks;
  LayerNorm norm{nullptr};
  TAggregate aggregate{nullptr};
  Linear head{nullptr};

 private:
  torch::Tensor encode_chunk(const torch::Tensor& images, BlockScratch& scratch);
};
TORCH_MODULE(Stam);

// The reference's initialisation (truncated normal std 0.02, zero biases, unit LayerNorms), for
// runs without weights (bench) and tests.
void init_random(Stam& model, uint64_t seed);

// Gives the model's parameters their home before they are filled (by load_weights() or
// init_random(); their values are not kept): memory on `device`, in `dtype` for the products'
// weights (Linear layers, the patch projection) and the embeddings. LayerNorm parameters and the
// head are fp32, and their forwards compute in their parameters' dtype, so normalisation and the
// logits are fp32-accurate whatever the products' precision. On a GPU the spatial encoder takes
// up to 128 frames a pass (frame_chunk), on a CPU 8.
void place(Stam& model, const torch::Device& device, c10::ScalarType dtype);

// Puts every tensor of `ckpt` into `model`, one tensor at a time: a tensor already of the
// parameter's dtype and device becomes the parameter (Checkpoint::view(): for a zip file, a view
// of the mapped file, never copied); any other is converted into it. Missing,
// unexpected or misshapen tensors throw ModelError naming the key and both shapes. When the
// model has a different frame count than the checkpoint, the temporal position embedding is
// resampled (CLS row kept, the T rows interpolated linearly along time).
void load_weights(Stam& model, const Checkpoint& ckpt);

// Linear resampling of a (1, T+1, D) temporal position embedding to (1, frames+1, D).
torch::Tensor resample_temporal_pos_embed(const torch::Tensor& pos, int64_t frames);

int64_t count_parameters(Stam& model);
// The same count from the architecture alone, without building the model: 119,205,520 for
// STAM-16.
int64_t parameter_count(const StamConfig& c);

// Multiply-adds x 2 for one video of `frames` frames, from the architecture alone (attention
// products included): 562 GFLOP for STAM-16.
double gflop_per_video(const StamConfig& c, int64_t frames);

}  // namespace stam
