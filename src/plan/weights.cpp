#include "plan/weights.h"

#include <fnmatch.h>

#include <regex>

namespace nibble::plan {
namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// clang-format off
const std::vector<WeightFormat> kFormats = {
  // id                        name         bits brow bcol sB  scale   scalars compute              layout
  {WeightFormatId::kF32,       "f32",        32,   0,   0, 0, "",      0, ComputeClass::kBf16, "plain F32"},
  {WeightFormatId::kBf16,      "bf16",       16,   0,   0, 0, "",      0, ComputeClass::kBf16, "plain BF16"},
  {WeightFormatId::kF16,       "f16",        16,   0,   0, 0, "",      0, ComputeClass::kBf16, "plain F16"},
  // ModelOpt FP8 per tensor: weight F8_E4M3 [out, in] + F32 weight_scale, input_scale (formats.md §4.1).
  {WeightFormatId::kFp8,       "fp8",         8,   0,   0, 0, "",      2, ComputeClass::kFp8,  "formats.md 4.1"},
  // FP8 per channel: weight F8_E4M3 [out, in] + F32 weight_scale [out] (formats.md §4.1, §4.3).
  {WeightFormatId::kFp8Channel,"fp8-channel", 8,   1,   0, 4, "F32",   0, ComputeClass::kFp8,  "formats.md 4.1/4.3"},
  // DeepSeek-V3 block FP8: weight F8_E4M3 [out, in] + F32 weight_scale_inv [ceil(out/128), ceil(in/128)] (§4.2).
  {WeightFormatId::kFp8Block,  "fp8-block",   8, 128, 128, 4, "F32",   0, ComputeClass::kFp8,  "formats.md 4.2"},
  // ModelOpt NVFP4: U8 [out, in/2] + E4M3 weight_scale [out, in/16] + F32 weight_scale_2, input_scale (§2.4).
  {WeightFormatId::kNvfp4,     "nvfp4",       4,   1,  16, 1, "E4M3",  2, ComputeClass::kFp4,  "formats.md 2.4"},
  // gpt-oss MXFP4: U8 blocks [out, in/32, 16] + E8M0 scales [out, in/32] (§3.3).
  {WeightFormatId::kMxfp4,     "mxfp4",       4,   1,  32, 1, "E8M0",  0, ComputeClass::kFp4,  "formats.md 3.3"},
};
// clang-format on

struct Builder {
  const ModelShape& m;
  std::vector<TensorSpec> out;

  TensorSpec& add(std::string module, std::string suffix, Group group, int64_t out_dim, int64_t in_dim) {
    TensorSpec t;
    t.name = suffix.empty() ? module : module + "." + suffix;
    t.module = std::move(module);
    t.group = group;
    t.out_dim = out_dim;
    t.in_dim = in_dim;
    t.unquantized = m.stored_dtype;
    out.push_back(std::move(t));
    return out.back();
  }
  // A Linear: weight [out_dim, in_dim] and, when asked, bias [out_dim].
  void linear(const std::string& module, Group group, int64_t out_dim, int64_t in_dim, bool bias) {
    add(module, "weight", group, out_dim, in_dim).linear = true;
    if (bias) add(module, "bias", group, 1, out_dim);
  }
  void norm(const std::string& module, int64_t dim, Group group = Group::kNorm) {
    add(module, "weight", group, 1, dim);
  }
};

void add_attention(Builder& b, const std::string& p) {
  const ModelShape& m = b.m;
  const int64_t h = m.hidden_size;
  const std::string a = p + "self_attn.";
  if (m.mla) {
    // HF DeepseekV3Attention.
    const MlaShape& mla = *m.mla;
    const int64_t q_head = mla.qk_nope_head_dim + mla.qk_rope_head_dim;
    if (mla.q_lora_rank > 0) {
      b.linear(a + "q_a_proj", Group::kAttention, mla.q_lora_rank, h, false);
      b.norm(a + "q_a_layernorm", mla.q_lora_rank, Group::kAttention);
      b.linear(a + "q_b_proj", Group::kAttention, m.num_heads * q_head, mla.q_lora_rank, false);
    } else {
      b.linear(a + "q_proj", Group::kAttention, m.num_heads * q_head, h, false);
    }
    b.linear(a + "kv_a_proj_with_mqa", Group::kAttention, mla.kv_lora_rank + mla.qk_rope_head_dim, h, false);
    b.norm(a + "kv_a_layernorm", mla.kv_lora_rank, Group::kAttention);
    b.linear(a + "kv_b_proj", Group::kAttention, m.num_heads * (mla.qk_nope_head_dim + mla.v_head_dim),
             mla.kv_lora_rank, false);
    b.linear(a + "o_proj", Group::kAttention, h, m.num_heads * mla.v_head_dim, false);
    return;
  }
  const int64_t q_dim = m.num_heads * m.head_dim;
  const int64_t kv_dim = m.num_kv_heads * m.head_dim;
  if (m.attention_sinks) b.add(a + "sinks", "", Group::kAttention, 1, m.num_heads);
  b.linear(a + "q_proj", Group::kAttention, q_dim, h, m.attention_bias);
  b.linear(a + "k_proj", Group::kAttention, kv_dim, h, m.attention_bias);
  b.linear(a + "v_proj", Group::kAttention, kv_dim, h, m.attention_bias);
  b.linear(a + "o_proj", Group::kAttention, h, q_dim, m.attention_bias);
  if (m.qk_norm) {
    b.norm(a + "q_norm", m.head_dim, Group::kAttention);
    b.norm(a + "k_norm", m.head_dim, Group::kAttention);
  }
}

void add_dense_mlp(Builder& b, const std::string& prefix, Group group, int64_t width, bool bias) {
  const int64_t h = b.m.hidden_size;
  b.linear(prefix + "gate_proj", group, width, h, bias);
  b.linear(prefix + "up_proj", group, width, h, bias);
  b.linear(prefix + "down_proj", group, h, width, bias);
}

void add_moe(Builder& b, const std::string& p) {
  const ModelShape& m = b.m;
  const int64_t h = m.hidden_size;
  const int64_t e = m.moe.num_experts;
  const int64_t w = m.moe.expert_intermediate;
  const std::string mlp = p + "mlp.";
  if (m.arch == Arch::kGptOss) {
    // HF GptOssMLP: router (Linear with bias) and fused experts with biases; gate/up interleaved.
    b.add(mlp + "router", "weight", Group::kRouter, e, h);
    b.add(mlp + "router", "bias", Group::kRouter, 1, e);
    const std::string ex = mlp + "experts";
    for (auto [name, out_dim, in_dim] :
         {std::tuple{"gate_up_proj", 2 * w, h}, std::tuple{"down_proj", h, w}}) {
      TensorSpec& wt = b.add(ex, name, Group::kExperts, out_dim, in_dim);
      wt.count = e;
      wt.linear = wt.routed = true;
      TensorSpec& bias = b.add(ex, std::string(name) + "_bias", Group::kExperts, 1, out_dim);
      bias.count = e;
      bias.routed = true;
    }
    return;
  }
  // Qwen3MoeSparseMoeBlock / DeepseekV3MoE: router `mlp.gate`, per-expert Linears.
  b.add(mlp + "gate", "weight", Group::kRouter, e, h);
  if (m.arch == Arch::kDeepseekV3) {
    TensorSpec& bias = b.add(mlp + "gate", "e_score_correction_bias", Group::kRouter, 1, e);
    bias.unquantized = WeightFormatId::kF32;  // kept F32 in the DeepSeek-V3 checkpoint
  }
  const std::string ex = mlp + "experts.0.";
  for (auto [name, out_dim, in_dim] :
       {std::tuple{"gate_proj", w, h}, std::tuple{"up_proj", w, h}, std::tuple{"down_proj", h, w}}) {
    TensorSpec& t = b.add(ex + name, "weight", Group::kExperts, out_dim, in_dim);
    t.count = e;
    t.linear = t.routed = true;
  }
  if (m.moe.num_shared_experts > 0) {
    add_dense_mlp(b, mlp + "shared_experts.", Group::kSharedExperts, m.moe.num_shared_experts * w, false);
  }
}

}  // namespace

const std::vector<WeightFormat>& weight_formats() {
  return kFormats;
}

const WeightFormat& weight_format(WeightFormatId id) {
  for (const WeightFormat& f : kFormats) {
    if (f.id == id) return f;
  }
  NIBBLE_CHECK(false, "weight format missing from the table");
  return kFormats[0];
}

int64_t matrix_scale_bytes(const WeightFormat& f, int64_t out_dim, int64_t in_dim) {
  int64_t bytes = int64_t{f.num_f32_scalars} * 4;
  if (f.scale_bytes > 0) {
    const int64_t row_blocks = f.block_rows > 0 ? ceil_div(out_dim, f.block_rows) : 1;
    const int64_t col_blocks = f.block_cols > 0 ? ceil_div(in_dim, f.block_cols) : 1;
    bytes += row_blocks * col_blocks * f.scale_bytes;
  }
  return bytes;
}

int64_t matrix_bytes(const WeightFormat& f, int64_t out_dim, int64_t in_dim) {
  return ceil_div(out_dim * in_dim * f.elem_bits, 8) + matrix_scale_bytes(f, out_dim, in_dim);
}

base::Result<FormatChoice> parse_format_choice(std::string_view text) {
  if (text == "as-is") return FormatChoice::kAsIs;
  if (text == "bf16") return FormatChoice::kBf16;
  if (text == "fp8") return FormatChoice::kFp8;
  if (text == "fp8-block") return FormatChoice::kFp8Block;
  if (text == "nvfp4") return FormatChoice::kNvfp4;
  if (text == "mxfp4") return FormatChoice::kMxfp4;
  return base::invalid_argument("--format '" + std::string(text) +
                                "' is not one of bf16, fp8, fp8-block, nvfp4, mxfp4, as-is");
}

const char* format_choice_name(FormatChoice choice) {
  switch (choice) {
    case FormatChoice::kAsIs:
      return "as-is";
    case FormatChoice::kBf16:
      return "bf16";
    case FormatChoice::kFp8:
      return "fp8";
    case FormatChoice::kFp8Block:
      return "fp8-block";
    case FormatChoice::kNvfp4:
      return "nvfp4";
    case FormatChoice::kMxfp4:
      return "mxfp4";
  }
  return "?";
}

const char* group_name(Group group) {
  switch (group) {
    case Group::kEmbedding:
      return "embedding";
    case Group::kAttention:
      return "attention";
    case Group::kMlp:
      return "mlp";
    case Group::kExperts:
      return "experts";
    case Group::kSharedExperts:
      return "shared_experts";
    case Group::kRouter:
      return "router";
    case Group::kNorm:
      return "norms";
    case Group::kLmHead:
      return "lm_head";
  }
  return "?";
}

std::vector<TensorSpec> enumerate_tensors(const ModelShape& m) {
  Builder b{m, {}};
  TensorSpec& embed = b.add("model.embed_tokens", "weight", Group::kEmbedding, m.vocab_size, m.hidden_size);
  embed.embedding = true;
  for (int64_t i = 0; i < m.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    b.norm(p + "input_layernorm", m.hidden_size);
    add_attention(b, p);
    b.norm(p + "post_attention_layernorm", m.hidden_size);
    if (m.layer_is_moe[static_cast<size_t>(i)]) {
      add_moe(b, p);
    } else {
      add_dense_mlp(b, p + "mlp.", Group::kMlp, m.intermediate_size, m.mlp_bias);
    }
  }
  b.norm("model.norm", m.hidden_size);
  // lm_head stays unquantized in every producer's default recipe (formats.md §2.4), so it is not
  // marked `linear`.
  if (!m.tie_word_embeddings) b.add("lm_head", "weight", Group::kLmHead, m.vocab_size, m.hidden_size);
  return std::move(b.out);
}

bool module_ignored(const std::string& module, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (p.rfind("re:", 0) == 0) {
      try {
        const std::regex re(p.substr(3));
        if (std::regex_search(module, re, std::regex_constants::match_continuous)) return true;
      } catch (const std::regex_error&) {
        continue;  // a pattern we cannot compile matches nothing
      }
      continue;
    }
    if (module == p) return true;
    if (module.size() > p.size() && module.compare(0, p.size(), p) == 0 && module[p.size()] == '.')
      return true;
    if (fnmatch(p.c_str(), module.c_str(), 0) == 0) return true;
    const std::string with_children = p + ".*";
    if (fnmatch(with_children.c_str(), module.c_str(), 0) == 0) return true;
  }
  return false;
}

WeightFormatId tensor_format(const ModelShape& m, const TensorSpec& t, FormatChoice choice) {
  if (!t.linear) {
    if (t.unquantized == WeightFormatId::kF32 && t.unquantized != m.stored_dtype) return WeightFormatId::kF32;
    return choice == FormatChoice::kAsIs ? t.unquantized : WeightFormatId::kBf16;
  }
  switch (choice) {
    case FormatChoice::kAsIs:
      if (m.quant.method.empty() || module_ignored(t.module, m.quant.ignore)) return t.unquantized;
      return m.quant.linear_format;
    case FormatChoice::kBf16:
      return WeightFormatId::kBf16;
    case FormatChoice::kFp8:
      return WeightFormatId::kFp8;
    case FormatChoice::kFp8Block:
      return WeightFormatId::kFp8Block;
    case FormatChoice::kNvfp4:
      return WeightFormatId::kNvfp4;
    case FormatChoice::kMxfp4:
      return WeightFormatId::kMxfp4;
  }
  return WeightFormatId::kBf16;
}

int64_t tensor_bytes(const TensorSpec& t, WeightFormatId format) {
  return t.count * matrix_bytes(weight_format(format), t.out_dim, t.in_dim);
}

}  // namespace nibble::plan
