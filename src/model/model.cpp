#include "model/model.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

#include "checkpoint/checkpoint.hpp"
#include "device.hpp"
#include "model/attention.hpp"
#include "model/layer_norm.hpp"
#include "model/linear.hpp"
#include "stam/error.hpp"

namespace stam {

namespace F = torch::nn::functional;
using torch::indexing::Slice;

// ---------------------------------------------------------------- layers

// Parameters are allocated, not initialised: every one is then either loaded or drawn by
// init_random(), so initialising here would only cost time (119M values for STAM-16).
LinearImpl::LinearImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  bias = register_parameter("bias", torch::empty({out}));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x, Activation act) {
  return linear(x, weight, bias, act);
}

void LinearImpl::forward_into(torch::Tensor& dst, const torch::Tensor& x, Activation act) {
  linear_out(dst, x, weight, bias, act, &packed);
}

void LinearImpl::add_to(torch::Tensor& residual, const torch::Tensor& x) {
  linear_add_(residual, x, weight, bias, &packed);
}

LayerNormImpl::LayerNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::empty({dim}));
  bias = register_parameter("bias", torch::empty({dim}));
}

// Computes in the parameters' dtype (no copies when the input's agrees).
torch::Tensor LayerNormImpl::normalize(const torch::Tensor& x) {
  return layer_norm_in_param_dtype(x, weight, bias, eps);
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return layer_norm(x, weight, bias, eps);
}

// ---------------------------------------------------------------- spatial encoder

PatchProjImpl::PatchProjImpl(const StamConfig& c) : patch(c.patch_size) {
  weight = register_parameter("weight",
                              torch::empty({c.embed_dim, c.in_chans, c.patch_size, c.patch_size}));
  bias = register_parameter("bias", torch::empty({c.embed_dim}));
}

torch::Tensor PatchProjImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, weight, bias, /*stride=*/patch);
}

PatchEmbedImpl::PatchEmbedImpl(const StamConfig& c) {
  proj = register_module("proj", PatchProj(c));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  return proj(x).flatten(2).transpose(1, 2);
}

void BlockScratch::fit(const torch::Tensor& x, int64_t mlp_hidden) {
  const int64_t n = x.size(0), l = x.size(1), d = x.size(2);
  const int64_t need = n * l * std::max(4 * d, mlp_hidden);
  if (!buffer.defined() || buffer.numel() < need || buffer.scalar_type() != x.scalar_type() ||
      buffer.device() != x.device())
    buffer = torch::empty({need}, x.options());
  qkv = buffer.narrow(0, 0, n * l * 3 * d).view({n, l, 3 * d});
  attn_out = buffer.narrow(0, n * l * 3 * d, n * l * d).view({n, l, d});
  hidden = buffer.narrow(0, 0, n * l * mlp_hidden).view({n, l, mlp_hidden});
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads_) : heads(heads_) {
  qkv = register_module("qkv", Linear(dim, dim * 3));
  proj = register_module("proj", Linear(dim, dim));
}

void AttentionImpl::add_to(torch::Tensor& residual, const torch::Tensor& x, BlockScratch& scratch) {
  qkv->forward_into(scratch.qkv, x);
  self_attention_out(scratch.attn_out, scratch.qkv, heads);
  proj->add_to(residual, scratch.attn_out);
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", Linear(dim, hidden));
  fc2 = register_module("fc2", Linear(hidden, dim));
}

void MlpImpl::add_to(torch::Tensor& residual, const torch::Tensor& x, BlockScratch& scratch) {
  fc1->forward_into(scratch.hidden, x, Activation::kGelu);
  fc2->add_to(residual, scratch.hidden);
}

BlockImpl::BlockImpl(const StamConfig& c) {
  norm1 = register_module("norm1", LayerNorm(c.embed_dim, c.eps));
  attn = register_module("attn", Attention(c.embed_dim, c.num_heads));
  norm2 = register_module("norm2", LayerNorm(c.embed_dim, c.eps));
  mlp = register_module("mlp", Mlp(c.embed_dim, c.mlp_hidden));
}

void BlockImpl::forward(torch::Tensor& x, BlockScratch& scratch) {
  attn->add_to(x, norm1(x), scratch);
  mlp->add_to(x, norm2(x), scratch);
}

// ---------------------------------------------------------------- temporal encoder

SelfAttentionImpl::SelfAttentionImpl(int64_t dim, int64_t heads_) : heads(heads_) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * dim, dim}));
  in_proj_bias = register_parameter("in_proj_bias", torch::empty({3 * dim}));
  out_proj = register_module("out_proj", Linear(dim, dim));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x) {
  return out_proj(self_attention(linear(x, in_proj_weight, in_proj_bias), heads));
}

EncoderLayerImpl::EncoderLayerImpl(const StamConfig& c) {
  self_attn = register_module("self_attn", SelfAttention(c.embed_dim, c.temporal_heads));
  linear1 = register_module("linear1", Linear(c.embed_dim, c.temporal_ffn));
  linear2 = register_module("linear2", Linear(c.temporal_ffn, c.embed_dim));
  norm1 = register_module("norm1", LayerNorm(c.embed_dim, c.eps));
  norm2 = register_module("norm2", LayerNorm(c.embed_dim, c.eps));
}

// Post-norm, as nn.TransformerEncoderLayer's default (norm_first=False), ReLU feed-forward.
torch::Tensor EncoderLayerImpl::forward(torch::Tensor x) {
  x = norm1(x + self_attn(x));
  return norm2(x + linear2(torch::relu(linear1(x))));
}

TransformerEncoderImpl::TransformerEncoderImpl(const StamConfig& c) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.temporal_layers; ++i) layers->push_back(EncoderLayer(c));
  norm = register_module("norm", LayerNorm(c.embed_dim, c.eps));
}

torch::Tensor TransformerEncoderImpl::forward(torch::Tensor x) {
  for (const auto& layer : *layers) x = layer->as<EncoderLayer>()->forward(x);
  // In the norm's own dtype (fp32 after place()): the clip embedding reaches the head unrounded.
  return norm->normalize(x);
}

TAggregateImpl::TAggregateImpl(const StamConfig& c) {
  cls_token = register_parameter("cls_token", torch::empty({1, 1, c.embed_dim}));
  pos_embed = register_parameter("pos_embed", torch::empty({1, c.frames + 1, c.embed_dim}));
  transformer_enc = register_module("transformer_enc", TransformerEncoder(c));
}

// The reference runs the encoder sequence-first; attention is per video either way, so we keep
// batch-first and skip two transposes.
torch::Tensor TAggregateImpl::forward(const torch::Tensor& frames) {
  auto x = torch::cat({cls_token.expand({frames.size(0), -1, -1}), frames}, 1) + pos_embed;
  return transformer_enc(x).select(1, 0);
}

// ---------------------------------------------------------------- STAM

StamImpl::StamImpl(const StamConfig& c) : config(c) {
  const int64_t grid = c.image_size / c.patch_size;
  patch_embed = register_module("patch_embed", PatchEmbed(c));
  cls_token = register_parameter("cls_token", torch::empty({1, 1, c.embed_dim}));
  pos_embed = register_parameter("pos_embed", torch::empty({1, grid * grid + 1, c.embed_dim}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(Block(c));
  norm = register_module("norm", LayerNorm(c.embed_dim, c.eps));
  aggregate = register_module("aggregate", TAggregate(c));
  head = register_module("head", Linear(c.embed_dim, c.num_classes));
}

torch::Tensor StamImpl::encode_chunk(const torch::Tensor& images, BlockScratch& scratch) {
  auto x = patch_embed(images);
  x = torch::cat({cls_token.expand({x.size(0), -1, -1}), x}, 1).add_(pos_embed);
  scratch.fit(x, config.mlp_hidden);
  for (const auto& block : *blocks) {
    fit_threads_to_decoding();  // a core for each clip being decoded beside the model
    block->as<Block>()->forward(x, scratch);
  }
  // Only the CLS token is used: normalise just that row (LayerNorm is per token).
  return norm(x.select(1, 0));
}

torch::Tensor StamImpl::encode_frames(const torch::Tensor& frames, const PrepareChunk& prepare) {
  const int64_t n = frames.size(0), chunk = std::max<int64_t>(1, frame_chunk);
  BlockScratch scratch;  // one for all chunks: reused memory does not fragment the heap
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < n; i += chunk) {
    const auto part = frames.slice(0, i, std::min(n, i + chunk));
    parts.push_back(encode_chunk(prepare ? prepare(part) : part, scratch));
  }
  return parts.size() == 1 ? parts.front() : torch::cat(parts);
}

torch::Tensor StamImpl::encode_clip(const torch::Tensor& frame_embeddings) {
  return aggregate(frame_embeddings);
}

// In the head's dtype (fp32 after place()), whatever the embedding's.
torch::Tensor StamImpl::classify(const torch::Tensor& clip_embedding) {
  return head(clip_embedding.to(head->weight.scalar_type()));
}

torch::Tensor StamImpl::forward(const torch::Tensor& images) {
  auto frames = encode_frames(images);
  auto clip = frames.view({-1, config.frames, config.embed_dim});
  return classify(encode_clip(clip));
}

// ---------------------------------------------------------------- config

namespace {

std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

const std::vector<int64_t>& shape_of(const Checkpoint& ckpt, const std::string& key, size_t rank) {
  const auto& e = ckpt.entry(key);
  if (e.sizes.size() != rank)
    throw ModelError(ckpt.path() + ": '" + key + "' has shape " + shape_str(e.sizes) +
                     ", expected " + std::to_string(rank) + " dimensions");
  return e.sizes;
}

int64_t count_indexed(const Checkpoint& ckpt, const std::string& prefix,
                      const std::string& suffix) {
  int64_t n = 0;
  while (ckpt.contains(prefix + std::to_string(n) + suffix)) ++n;
  return n;
}

}  // namespace

StamConfig StamConfig::from_checkpoint(const Checkpoint& ckpt) {
  if (!ckpt.contains("aggregate.pos_embed") || !ckpt.contains("patch_embed.proj.weight"))
    throw ModelError(ckpt.path() +
                     ": not a STAM state dict (no 'patch_embed.proj.weight' or "
                     "'aggregate.pos_embed' tensor)");
  StamConfig c;
  const auto& proj = shape_of(ckpt, "patch_embed.proj.weight", 4);
  c.embed_dim = proj[0];
  c.in_chans = proj[1];
  c.patch_size = proj[2];
  const int64_t tokens = shape_of(ckpt, "pos_embed", 3)[1] - 1;
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(tokens))));
  if (grid * grid != tokens || proj[2] != proj[3])
    throw ModelError(ckpt.path() + ": 'pos_embed' has " + std::to_string(tokens) +
                     " patch tokens, not a square grid of square patches");
  c.image_size = grid * c.patch_size;
  c.depth = count_indexed(ckpt, "blocks.", ".norm1.weight");
  // ViT checkpoints do not record their head count; every standard ViT uses head dim 64.
  c.num_heads = c.embed_dim % 64 == 0 ? c.embed_dim / 64 : 1;
  c.mlp_hidden = shape_of(ckpt, "blocks.0.mlp.fc1.weight", 2)[0];
  c.frames = shape_of(ckpt, "aggregate.pos_embed", 3)[1] - 1;
  c.temporal_layers = count_indexed(ckpt, "aggregate.transformer_enc.layers.", ".linear1.weight");
  c.temporal_ffn = shape_of(ckpt, "aggregate.transformer_enc.layers.0.linear1.weight", 2)[0];
  c.num_classes = shape_of(ckpt, "head.weight", 2)[0];
  if (c.embed_dim % c.temporal_heads != 0 || c.frames < 1 || c.depth < 1)
    throw ModelError(ckpt.path() + ": inconsistent STAM dimensions: " + c.describe());
  return c;
}

std::string StamConfig::describe() const {
  std::ostringstream o;
  o << "ViT " << image_size << "px/" << patch_size << " dim " << embed_dim << " depth " << depth
    << " heads " << num_heads << " mlp " << mlp_hidden << "; temporal " << temporal_layers
    << " layers x " << temporal_heads << " heads ffn " << temporal_ffn << " over " << frames
    << " frames; " << num_classes << " classes";
  return o.str();
}

// ---------------------------------------------------------------- weights

void init_random(Stam& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    torch::Tensor& t = p.value();
    const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    if (is_bias) {
      t.zero_();
    } else if (name.find("norm") != std::string::npos) {
      t.fill_(1.0);
    } else {
      // Truncated normal, std 0.02, cut at +-2 (as the reference's trunc_normal_).
      t.normal_(0.0, 0.02).clamp_(-2.0, 2.0);
    }
  }
}

void place(Stam& model, const torch::Device& device, c10::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  // Chunks keep a CPU's cache warm; a GPU wants large passes, but not unbounded ones: a frame
  // of ViT-B/16 holds ~5.5 MB of temporaries in fp16 (~8 in fp32: the blocks' scratch, and the
  // attention's 12 x 197 x 197 scores in fp32 with their softmax), so -b 64 x 16 frames in one
  // pass needed ~6 GB. 128 frames (8 clips of 16) keep that near 1 GB at most, while each product
  // still has 25k rows and a pass ~4.5 TFLOP, against which its ~300 kernel launches are noise.
  if (device.is_cuda()) model->frame_chunk = 128;
  // Fresh memory, not a conversion: converting the unset values cost 0.74 s for STAM-16 in
  // bf16 (every page of 477 MB faulted in to be read), and on a GPU would copy them over.
  const auto* head = model->head.get();
  for (const auto& m : model->modules()) {
    const bool fp32 = m->as<LayerNormImpl>() || m.get() == head;
    for (auto& p : m->parameters(/*recurse=*/false))
      p.set_data(
          torch::empty(p.sizes(), p.options().device(device).dtype(fp32 ? torch::kFloat : dtype)));
  }
}

torch::Tensor resample_temporal_pos_embed(const torch::Tensor& pos, int64_t frames) {
  auto cls = pos.index({Slice(), Slice(0, 1)});
  auto rows = pos.index({Slice(), Slice(1, torch::indexing::None)}).transpose(1, 2);
  auto resized = F::interpolate(rows.to(torch::kFloat), F::InterpolateFuncOptions()
                                                            .size(std::vector<int64_t>{frames})
                                                            .mode(torch::kLinear)
                                                            .align_corners(false));
  return torch::cat({cls, resized.to(pos.dtype()).transpose(1, 2)}, 1);
}

void load_weights(Stam& model, const Checkpoint& ckpt) {
  torch::NoGradGuard no_grad;
  auto params = model->named_parameters();
  for (const auto& e : ckpt.entries())
    if (!params.contains(e.key))
      throw ModelError(ckpt.path() + ": unexpected tensor '" + e.key + "' of shape " +
                       shape_str(e.sizes) + " (not part of " + model->config.describe() + ")");
  for (auto& p : params) {
    const std::string& key = p.key();
    torch::Tensor& dst = p.value();
    if (!ckpt.contains(key))
      throw ModelError(ckpt.path() + ": missing tensor '" + key + "' (expected shape " +
                       shape_str(dst.sizes()) + ")");
    const auto& e = ckpt.entry(key);
    torch::Tensor src = ckpt.view(key);
    const bool resample = key == "aggregate.pos_embed" && e.sizes.size() == 3 && e.sizes[0] == 1 &&
                          e.sizes[2] == dst.size(2) && e.sizes[1] != dst.size(1);
    if (resample) {
      spdlog::warn(
          "checkpoint was trained on {} frames, running {}: resampling the temporal "
          "position embedding linearly",
          e.sizes[1] - 1, dst.size(1) - 1);
      src = resample_temporal_pos_embed(src, dst.size(1) - 1);
    }
    if (src.sizes() != dst.sizes())
      throw ModelError(ckpt.path() + ": tensor '" + key + "' has shape " + shape_str(src.sizes()) +
                       ", the model expects " + shape_str(dst.sizes()));
    // Same dtype and device: the parameter takes the loaded tensor itself (for a zip checkpoint,
    // a view of the mapped file), so the weights are never copied. Else convert into it.
    if (src.scalar_type() == dst.scalar_type() && src.device() == dst.device() &&
        src.is_contiguous()) {
      dst.set_data(src);
    } else {
      dst.copy_(src);
      ckpt.release(key);  // the file's bytes are not read again: they leave memory now
    }
  }
}

double gflop_per_video(const StamConfig& c, int64_t frames) {
  // Per transformer layer over n tokens of width d: projections 4 n d^2 (q, k, v, out), the two
  // attention products 2 n^2 d, the feed-forward 2 n d h. Multiply-adds; x2 for FLOP.
  auto layer = [](double n, double d, double h) {
    return 4 * n * d * d + 2 * n * n * d + 2 * n * d * h;
  };
  const double grid = static_cast<double>(c.image_size / c.patch_size);
  const double tokens = grid * grid + 1, d = static_cast<double>(c.embed_dim);
  const double patch =
      grid * grid * d * static_cast<double>(c.in_chans * c.patch_size * c.patch_size);
  const double frame =
      patch + static_cast<double>(c.depth) * layer(tokens, d, double(c.mlp_hidden));
  const double temporal =
      static_cast<double>(c.temporal_layers) * layer(double(frames + 1), d, double(c.temporal_ffn));
  const double head = d * static_cast<double>(c.num_classes);
  return 2.0 * (double(frames) * frame + temporal + head) / 1e9;
}

int64_t parameter_count(const StamConfig& c) {
  const auto linear = [](int64_t in, int64_t out) { return in * out + out; };
  const int64_t d = c.embed_dim, norm = 2 * d;
  const int64_t grid = c.image_size / c.patch_size;
  const int64_t spatial_block = 2 * norm + linear(d, 3 * d) + linear(d, d) +
                                linear(d, c.mlp_hidden) + linear(c.mlp_hidden, d);
  const int64_t temporal_layer = 2 * norm + linear(d, 3 * d) + linear(d, d) +
                                 linear(d, c.temporal_ffn) + linear(c.temporal_ffn, d);
  const int64_t spatial = linear(c.in_chans * c.patch_size * c.patch_size, d) + d +
                          (grid * grid + 1) * d + c.depth * spatial_block + norm;
  const int64_t temporal = d + (c.frames + 1) * d + c.temporal_layers * temporal_layer + norm;
  return spatial + temporal + linear(d, c.num_classes);
}

int64_t count_parameters(Stam& model) {
  int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  return n;
}

}  // namespace stam
