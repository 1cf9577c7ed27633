// nibble quantize / quantized loading / eval, on tiny random checkpoints.
//
// Oracle for the round trips: the formats codecs' own dequantization (golden-checked against
// ModelOpt / compressed-tensors in tests/formats) written out as an F32 checkpoint, run through the
// FP32 forward pass (golden-checked against transformers in tests/model_golden_test.cpp). The
// quantized model must give the same logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file_util.h"
#include "base/float16.h"
#include "formats/block_format.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/moe.h"
#include "model/quant_config.h"
#include "model/random_checkpoint.h"
#include "quant/evaluate.h"
#include "quant/quantize.h"
#include "../model_test_util.h"

namespace nibble::quant {
namespace {

namespace fs = std::filesystem;
using testing_util::TempDir;

// hidden 128 / intermediate 256 / q 256 / kv 128: divisible by 16, 32 and 128, so every format
// quantizes every linear layer.
model::RandomModelSpec tiny_spec() {
  model::RandomModelSpec spec;
  spec.preset = "tiny";
  spec.hidden_size = 128;
  spec.intermediate_size = 256;
  spec.num_attention_heads = 4;
  spec.num_key_value_heads = 2;
  spec.head_dim = 64;
  spec.num_hidden_layers = 2;
  spec.vocab_size = 300;
  spec.tie_word_embeddings = false;
  return spec;
}

QuantizeSpec spec_for(const std::string& format, formats::ScaleSearch scales = formats::ScaleSearch::kMax) {
  QuantizeSpec s;
  s.format = format;
  s.scales = scales;
  s.progress = false;
  s.num_threads = 2;
  return s;
}

std::vector<float> logits_of(const std::string& dir, const std::vector<int32_t>& tokens) {
  model::LoadOptions opts;
  opts.max_seq_len = 64;
  opts.max_logit_rows = static_cast<int64_t>(tokens.size());
  auto m = model::load_model(dir, opts);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return {};
  auto cache = (*m)->new_kv_cache();
  auto l = (*m)->forward(tokens, 0, *cache, static_cast<int64_t>(tokens.size()));
  EXPECT_TRUE(l.ok()) << l.status().message();
  return l.ok() ? std::vector<float>(l->begin(), l->end()) : std::vector<float>{};
}

// Writes an F32 checkpoint holding the quantized checkpoint's weights dequantized by formats.
void write_dequantized(const std::string& qdir, const std::string& in_dir, const std::string& out_dir,
                       const std::string& format) {
  auto ckpt = io::Checkpoint::open(qdir);
  auto in_ckpt = io::Checkpoint::open(in_dir);
  ASSERT_TRUE(ckpt.ok() && in_ckpt.ok());
  const formats::BlockFormat& bf = *formats::find_block_format(format);
  const std::map<std::string, std::pair<std::string, std::string>> suffixes = {
      {"nvfp4", {".weight", ".weight_scale"}},
      {"mxfp4", {".weight_blocks", ".weight_scales"}},
      {"fp8", {".weight", ".weight_scale"}},
      {"fp8-block", {".weight", ".weight_scale_inv"}}};
  const auto [data_suffix, scale_suffix] = suffixes.at(format);
  std::vector<io::TensorToWrite> out;
  std::vector<std::vector<float>> keep;
  keep.reserve(ckpt->names().size());
  for (const std::string& name : ckpt->names()) {
    const io::TensorInfo& t = *ckpt->find(name);
    if (name.size() > scale_suffix.size() && name.ends_with(scale_suffix)) {
      const std::string module = name.substr(0, name.size() - scale_suffix.size());
      const io::TensorInfo& data = *ckpt->find(module + data_suffix);
      const io::TensorInfo& in_w = *in_ckpt->find(module + ".weight");
      const int64_t rows = in_w.shape[0], cols = in_w.shape[1];
      formats::QuantizedTensor q;
      q.layout = *formats::tensor_layout(bf, rows, cols);
      q.data.assign(data.data, data.data + data.num_bytes);
      q.scales.assign(t.data, t.data + t.num_bytes);
      if (bf.has_tensor_scale) std::memcpy(&q.tensor_scale, ckpt->find(module + ".weight_scale_2")->data, 4);
      keep.emplace_back(static_cast<size_t>(rows * cols));
      formats::dequantize_tensor(bf, q, keep.back());
      out.push_back({module + ".weight", tensor::DType::kF32, {rows, cols}, keep.back().data(),
                     static_cast<uint64_t>(rows * cols * 4)});
      continue;
    }
    const bool quant_part = name.ends_with(data_suffix) && ckpt->find(name.substr(0, name.size() - data_suffix.size()) +
                                                                        scale_suffix) != nullptr;
    if (quant_part || name.ends_with(".weight_scale_2") || name.ends_with(".input_scale")) continue;
    out.push_back({name, t.dtype, t.shape, t.data, t.num_bytes});
  }
  fs::create_directories(out_dir);
  ASSERT_TRUE(io::write_safetensors(out_dir + "/model.safetensors", out).ok());
  fs::copy_file(in_dir + "/config.json", out_dir + "/config.json");
}

class RoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTrip, QuantizedLogitsEqualDequantizedFp32Reference) {
  TempDir tmp("quant_rt");
  const std::string in = tmp / "in", q = tmp / "q", ref = tmp / "ref";
  ASSERT_TRUE(model::write_random_checkpoint(in, tiny_spec()).ok());
  auto report = quantize_checkpoint(in, q, spec_for(GetParam()));
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->num_quantized, 14);  // 7 linear layers x 2 layers; lm_head and embeddings kept
  write_dequantized(q, in, ref, GetParam());
  const std::vector<int32_t> tokens = {1, 17, 42, 99, 250, 3, 7};
  const std::vector<float> lq = logits_of(q, tokens), lr = logits_of(ref, tokens), lb = logits_of(in, tokens);
  ASSERT_EQ(lq.size(), lr.size());
  ASSERT_FALSE(lq.empty());
  double max_diff = 0.0, max_base_diff = 0.0;
  for (size_t i = 0; i < lq.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(lq[i] - lr[i])));
    max_base_diff = std::max(max_base_diff, static_cast<double>(std::fabs(lq[i] - lb[i])));
  }
  EXPECT_LE(max_diff, 1e-5) << GetParam();
  EXPECT_GT(max_base_diff, 1e-4) << "quantization should change the logits at all";
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTrip, ::testing::Values("nvfp4", "mxfp4", "fp8", "fp8-block"));

nlohmann::json read_json_file(const std::string& path) {
  return nlohmann::json::parse(*base::read_file(path));
}

// Qwen3-MoE: every expert's gate/up/down (experts.N.{gate,up,down}_proj) becomes an NVFP4 / MXFP4 /
// FP8 module in the per-expert ModelOpt-style layout vLLM's expert mapping loads; the routers
// (mlp.gate) and the dense layer's MLP are excluded / quantized as usual. Oracle as in RoundTrip
// (formats' dequantization as an F32 checkpoint) plus the KL against the BF16 model.
class MoeRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(MoeRoundTrip, QuantizedExpertsLoadRunAndStayClose) {
  const std::string format = GetParam();
  TempDir tmp("quant_moe");
  const std::string in = tmp / "in", q = tmp / "q", ref = tmp / "ref";
  model::RandomModelSpec spec;
  spec.arch = "qwen3-moe";
  spec.preset = "tiny";  // hidden 64, 3 layers (layer 1 dense: mlp_only_layers), 8 experts top-2
  spec.vocab_size = 300;
  spec.init_std = 0.08;
  ASSERT_TRUE(model::write_random_checkpoint(in, spec).ok());
  auto report = quantize_checkpoint(in, q, spec_for(format));
  ASSERT_TRUE(report.ok()) << report.status().message();
  auto ckpt = io::Checkpoint::open(q);
  ASSERT_TRUE(ckpt.ok());
  const std::map<std::string, std::vector<std::string>> names = {
      {"nvfp4", {".weight", ".weight_scale", ".weight_scale_2"}},
      {"mxfp4", {".weight_blocks", ".weight_scales"}},
      {"fp8", {".weight", ".weight_scale"}}};
  int64_t quantized_experts = 0;
  for (const std::string& name : ckpt->names()) {
    if (name.find(".mlp.experts.") != std::string::npos && name.ends_with(names.at(format)[1])) ++quantized_experts;
  }
  auto config = model::load_model_config(in);
  ASSERT_TRUE(config.ok());
  int64_t sparse_layers = 0;
  for (int64_t i = 0; i < config->num_hidden_layers; ++i) sparse_layers += model::is_sparse_layer(*config, i) ? 1 : 0;
  ASSERT_GT(sparse_layers, 0);
  EXPECT_EQ(quantized_experts, sparse_layers * config->moe.num_experts * 3);
  for (const std::string& suffix : names.at(format)) {
    EXPECT_NE(ckpt->find("model.layers.0.mlp.experts.7.down_proj" + suffix), nullptr) << suffix;
  }
  EXPECT_NE(ckpt->find("model.layers.0.mlp.gate.weight"), nullptr) << "router stays BF16";
  if (format == "nvfp4") {
    // gate_proj and up_proj of one expert share weight_scale_2 (vLLM fuses them into w13).
    const io::TensorInfo* g = ckpt->find("model.layers.2.mlp.experts.3.gate_proj.weight_scale_2");
    const io::TensorInfo* u = ckpt->find("model.layers.2.mlp.experts.3.up_proj.weight_scale_2");
    ASSERT_TRUE(g != nullptr && u != nullptr);
    EXPECT_EQ(std::memcmp(g->data, u->data, 4), 0);
    const nlohmann::json hq = read_json_file(q + "/hf_quant_config.json");
    const auto excl = hq["quantization"]["exclude_modules"].get<std::vector<std::string>>();
    EXPECT_NE(std::find(excl.begin(), excl.end(), "model.layers.0.mlp.gate"), excl.end());
  }

  write_dequantized(q, in, ref, format);
  const std::vector<int32_t> tokens = {1, 17, 42, 99, 250, 3, 7, 64, 128};
  const std::vector<float> lq = logits_of(q, tokens), lr = logits_of(ref, tokens);
  ASSERT_EQ(lq.size(), lr.size());
  ASSERT_FALSE(lq.empty());
  double max_diff = 0.0, max_abs = 0.0;
  for (size_t i = 0; i < lq.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(lq[i] - lr[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(lr[i])));
  }
  // The kernel table may round activations (BF16 / int8) on ISAs that do; fp32 ISAs agree to ~1e-6.
  EXPECT_LE(max_diff, 2e-2 * max_abs) << format;

  std::vector<int32_t> eval_tokens;
  model::NormalRng rng(9);
  for (int i = 0; i < 256; ++i) eval_tokens.push_back(static_cast<int32_t>(rng.next_u64() % 300));
  auto r = evaluate(q, in, eval_tokens, 64, 2);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::printf("%s experts: mean KL %.5f, max KL %.5f, top-1 agreement %.3f\n", format.c_str(), r->mean_kl,
              r->max_kl, r->top1_agreement);
  EXPECT_GT(r->mean_kl, 0.0);
  EXPECT_LT(r->mean_kl, format == "fp8" ? 0.01 : 0.1);
  EXPECT_GT(r->top1_agreement, format == "fp8" ? 0.7 : 0.4);

  // Greedy decoding runs through the quantized experts (token-by-token through the KV cache).
  model::LoadOptions opts;
  opts.max_seq_len = 64;
  auto m = model::load_model(q, opts);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto cache = (*m)->new_kv_cache();
  auto l = (*m)->forward(tokens, 0, *cache, 1);
  ASSERT_TRUE(l.ok()) << l.status().message();
  for (int64_t pos = static_cast<int64_t>(tokens.size()); pos < 24; ++pos) {
    const auto next = static_cast<int32_t>(std::max_element(l->begin(), l->end()) - l->begin());
    l = (*m)->forward({&next, 1}, pos, *cache, 1);
    ASSERT_TRUE(l.ok()) << l.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, MoeRoundTrip, ::testing::Values("nvfp4", "mxfp4", "fp8"));

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(*base::read_file(path));
}

TEST(Quantize, ModelOptNvfp4LayoutAndMaxScalesAsModelOpt) {
  TempDir tmp("quant_mo");
  const std::string in = tmp / "in", q = tmp / "q";
  ASSERT_TRUE(model::write_random_checkpoint(in, tiny_spec()).ok());
  ASSERT_TRUE(quantize_checkpoint(in, q, spec_for("nvfp4")).ok());
  const auto hq = read_json(q + "/hf_quant_config.json");
  EXPECT_EQ(hq["quantization"]["quant_algo"], "NVFP4");
  EXPECT_EQ(hq["quantization"]["group_size"], 16);
  EXPECT_TRUE(hq["quantization"].contains("kv_cache_quant_algo"));
  EXPECT_EQ(hq["quantization"]["exclude_modules"], nlohmann::json::array({"lm_head"}));
  const auto cfg = read_json(q + "/config.json");
  EXPECT_EQ(cfg["quantization_config"]["quant_method"], "modelopt");
  EXPECT_EQ(cfg["quantization_config"]["quant_algo"], "NVFP4");
  EXPECT_EQ(cfg["quantization_config"]["config_groups"]["group_0"]["weights"]["group_size"], 16);
  EXPECT_TRUE(fs::exists(q + "/generation_config.json"));

  auto qc = io::Checkpoint::open(q);
  auto ic = io::Checkpoint::open(in);
  ASSERT_TRUE(qc.ok() && ic.ok());
  const std::string p = "model.layers.1.self_attn.";
  const io::TensorInfo* w = qc->find(p + "k_proj.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, tensor::DType::kU8);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{128, 64}));
  const io::TensorInfo* s = qc->find(p + "k_proj.weight_scale");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->dtype, tensor::DType::kF8E4M3);
  EXPECT_EQ(s->shape, (std::vector<int64_t>{128, 8}));
  const io::TensorInfo* s2 = qc->find(p + "k_proj.weight_scale_2");
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(s2->dtype, tensor::DType::kF32);
  EXPECT_TRUE(s2->shape.empty());
  EXPECT_EQ(qc->find("lm_head.weight")->dtype, tensor::DType::kBF16);
  EXPECT_EQ(qc->find("model.embed_tokens.weight")->dtype, tensor::DType::kBF16);

  // q/k/v share weight_scale_2 = max amax / 2688 (ModelOpt preprocess_linear_fusion), gate/up too.
  float amax = 0.0f;
  std::vector<std::vector<float>> ws;
  for (const char* m : {"q_proj", "k_proj", "v_proj"}) {
    const io::TensorInfo& t = *ic->find(p + m + ".weight");
    std::vector<float> x(static_cast<size_t>(t.num_elems()));
    for (size_t i = 0; i < x.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + i * 2, 2);
      x[i] = base::bf16_to_float(h);
      amax = std::max(amax, std::fabs(x[i]));
    }
    ws.push_back(std::move(x));
  }
  float s2_q, s2_k, s2_v;
  std::memcpy(&s2_q, qc->find(p + "q_proj.weight_scale_2")->data, 4);
  std::memcpy(&s2_k, qc->find(p + "k_proj.weight_scale_2")->data, 4);
  std::memcpy(&s2_v, qc->find(p + "v_proj.weight_scale_2")->data, 4);
  EXPECT_EQ(s2_q, s2_k);
  EXPECT_EQ(s2_q, s2_v);
  EXPECT_EQ(s2_q, amax / 2688.0f);
  float g2, u2;
  std::memcpy(&g2, qc->find("model.layers.0.mlp.gate_proj.weight_scale_2")->data, 4);
  std::memcpy(&u2, qc->find("model.layers.0.mlp.up_proj.weight_scale_2")->data, 4);
  EXPECT_EQ(g2, u2);

  // --scales max bytes = formats' ModelOpt rule (byte-identical to ModelOpt 0.47 in the formats
  // goldens) with the fused amax.
  const formats::BlockFormat& bf = *formats::find_block_format("nvfp4");
  formats::QuantizeOptions o;
  o.tensor_amax = amax;
  auto want = formats::quantize_tensor(bf, ws[1], 128, 128, o);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(std::vector<uint8_t>(w->data, w->data + w->num_bytes), want->data);
  EXPECT_EQ(std::vector<uint8_t>(s->data, s->data + s->num_bytes), want->scales);
}

TEST(Quantize, MseGivesLowerKlThanMaxForNvfp4AndMxfp4) {
  TempDir tmp("quant_kl");
  const std::string in = tmp / "in";
  auto spec = tiny_spec();
  spec.init_std = 0.08;  // sharper distributions so the KL is well above float noise
  ASSERT_TRUE(model::write_random_checkpoint(in, spec).ok());
  std::vector<int32_t> tokens;
  model::NormalRng rng(5);
  for (int i = 0; i < 384; ++i) tokens.push_back(static_cast<int32_t>(rng.next_u64() % 300));
  for (const std::string format : {"nvfp4", "mxfp4"}) {
    double kl[2];
    for (int s = 0; s < 2; ++s) {
      const std::string q = tmp / (format + std::to_string(s));
      ASSERT_TRUE(quantize_checkpoint(in, q, spec_for(format, s ? formats::ScaleSearch::kMse : formats::ScaleSearch::kMax)).ok());
      auto r = evaluate(q, in, tokens, 64, 2);
      ASSERT_TRUE(r.ok()) << r.status().message();
      kl[s] = r->mean_kl;
      EXPECT_GT(r->mean_kl, 0.0);
      EXPECT_GT(r->top1_agreement, 0.3);
    }
    EXPECT_LT(kl[1], kl[0]) << format << ": mse " << kl[1] << " vs max " << kl[0];
  }
}

TEST(Quantize, CalibrationWritesSharedInputScales) {
  TempDir tmp("quant_calib");
  const std::string in = tmp / "in", q = tmp / "q";
  ASSERT_TRUE(model::write_random_checkpoint(in, tiny_spec()).ok());
  ASSERT_TRUE(base::write_file_atomic(tmp / "calib.txt", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 200 201").ok());
  auto s = spec_for("nvfp4");
  s.calib_data = tmp / "calib.txt";
  ASSERT_TRUE(quantize_checkpoint(in, q, s).ok());
  auto qc = io::Checkpoint::open(q);
  ASSERT_TRUE(qc.ok());
  float iq, ik, io_, id;
  std::memcpy(&iq, qc->find("model.layers.0.self_attn.q_proj.input_scale")->data, 4);
  std::memcpy(&ik, qc->find("model.layers.0.self_attn.k_proj.input_scale")->data, 4);
  std::memcpy(&io_, qc->find("model.layers.0.self_attn.o_proj.input_scale")->data, 4);
  std::memcpy(&id, qc->find("model.layers.0.mlp.down_proj.input_scale")->data, 4);
  EXPECT_EQ(iq, ik);
  EXPECT_GT(iq, 0.0f);
  EXPECT_NE(io_, id);
  const auto cfg = read_json(q + "/config.json");
  EXPECT_FALSE(cfg["quantization_config"]["config_groups"]["group_0"]["input_activations"].is_null());
  // The loader keeps it on the MatWeight (W4A16: not applied).
  EXPECT_FALSE(logits_of(q, {1, 2, 3}).empty());
}

// Qwen3-MoE calibration: every expert module gets an input_scale (vLLM's ModelOpt MoE loaders read
// w13 / w2 input scales per expert), gate and up share theirs, and the router stays unquantized.
TEST(Quantize, CalibrationCoversMoeExperts) {
  TempDir tmp("quant_calib_moe");
  const std::string in = tmp / "in";
  model::RandomModelSpec spec;
  spec.arch = "qwen3-moe";
  spec.preset = "tiny";
  spec.vocab_size = 300;
  ASSERT_TRUE(model::write_random_checkpoint(in, spec).ok());
  ASSERT_TRUE(base::write_file_atomic(tmp / "calib.txt", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 200 201").ok());
  for (const std::string format : {"nvfp4", "fp8"}) {
    const std::string q = tmp / format;
    auto s = spec_for(format);
    s.calib_data = tmp / "calib.txt";
    auto report = quantize_checkpoint(in, q, s);
    ASSERT_TRUE(report.ok()) << report.status().message();
    auto qc = io::Checkpoint::open(q);
    ASSERT_TRUE(qc.ok());
    auto scale = [&](const std::string& name) {
      const io::TensorInfo* t = qc->find(name + ".input_scale");
      float v = -1.0f;
      if (t != nullptr) std::memcpy(&v, t->data, 4);
      return v;
    };
    for (const int layer : {0, 2}) {
      const std::string p = "model.layers." + std::to_string(layer) + ".mlp.experts.";
      const float gate0 = scale(p + "0.gate_proj"), down0 = scale(p + "0.down_proj");
      EXPECT_GT(gate0, 0.0f) << format;
      EXPECT_GT(down0, 0.0f) << format;
      EXPECT_NE(gate0, down0) << format;
      for (int e = 0; e < 8; ++e) {
        EXPECT_EQ(scale(p + std::to_string(e) + ".gate_proj"), gate0) << format << " expert " << e;
        EXPECT_EQ(scale(p + std::to_string(e) + ".up_proj"), gate0) << format << " expert " << e;
        EXPECT_EQ(scale(p + std::to_string(e) + ".down_proj"), down0) << format << " expert " << e;
      }
    }
    EXPECT_GT(scale("model.layers.1.mlp.down_proj"), 0.0f) << "dense layer";
    EXPECT_EQ(qc->find("model.layers.0.mlp.gate.input_scale"), nullptr) << "router not quantized";
    EXPECT_FALSE(logits_of(q, {1, 2, 3}).empty());
  }
}

TEST(Quantize, RefusesExistingOutputAndCleansUpWhenInterrupted) {
  TempDir tmp("quant_out");
  const std::string in = tmp / "in", q = tmp / "q";
  ASSERT_TRUE(model::write_random_checkpoint(in, tiny_spec()).ok());
  fs::create_directories(q);
  auto r = quantize_checkpoint(in, q, spec_for("fp8"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--force"), std::string::npos);
  auto f = spec_for("fp8");
  f.force = true;
  ASSERT_TRUE(quantize_checkpoint(in, q, f).ok());
  EXPECT_TRUE(fs::exists(q + "/model.safetensors"));
  g_interrupted = true;
  auto c = quantize_checkpoint(in, tmp / "q2", spec_for("nvfp4"));
  g_interrupted = false;
  ASSERT_FALSE(c.ok());
  EXPECT_FALSE(fs::exists(tmp / "q2"));
  for (const auto& e : fs::directory_iterator(tmp.path())) {
    EXPECT_EQ(e.path().filename().string().find("nibble-tmp"), std::string::npos) << e.path();
  }
}

TEST(Quantize, ExcludeGlobsAndIndivisibleShapesStayBf16) {
  TempDir tmp("quant_ex");
  const std::string in = tmp / "in", q = tmp / "q";
  auto spec = tiny_spec();
  spec.intermediate_size = 200;  // down_proj K = 200: not a multiple of 16
  ASSERT_TRUE(model::write_random_checkpoint(in, spec).ok());
  auto s = spec_for("nvfp4");
  s.exclude = {"*.layers.1.self_attn.*"};
  auto r = quantize_checkpoint(in, q, s);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->warnings.size(), 2u);  // down_proj of both layers
  auto qc = io::Checkpoint::open(q);
  EXPECT_EQ(qc->find("model.layers.1.self_attn.q_proj.weight")->dtype, tensor::DType::kBF16);
  EXPECT_EQ(qc->find("model.layers.0.self_attn.q_proj.weight")->dtype, tensor::DType::kU8);
  EXPECT_EQ(qc->find("model.layers.0.mlp.down_proj.weight")->dtype, tensor::DType::kBF16);
  const auto ex = read_json(q + "/hf_quant_config.json")["quantization"]["exclude_modules"];
  EXPECT_NE(std::find(ex.begin(), ex.end(), "model.layers.1.self_attn.q_proj"), ex.end());
  EXPECT_NE(std::find(ex.begin(), ex.end(), "model.layers.0.mlp.down_proj"), ex.end());
  EXPECT_FALSE(logits_of(q, {1, 2, 3}).empty());
}

TEST(Quantize, NanWeightIsAnErrorNamingTheTensor) {
  TempDir tmp("quant_nan");
  const std::string in = tmp / "in";
  ASSERT_TRUE(model::write_random_checkpoint(in, tiny_spec()).ok());
  // Rewrite the checkpoint with one NaN in layer 0's up_proj.
  auto ckpt = io::Checkpoint::open(in);
  ASSERT_TRUE(ckpt.ok());
  std::vector<io::TensorToWrite> out;
  std::vector<uint8_t> bad;
  for (const std::string& name : ckpt->names()) {
    const io::TensorInfo& t = *ckpt->find(name);
    if (name == "model.layers.0.mlp.up_proj.weight") {
      bad.assign(t.data, t.data + t.num_bytes);
      bad[10] = 0xC0;  // BF16 0x7FC0 = NaN at element 5
      bad[11] = 0x7F;
      out.push_back({name, t.dtype, t.shape, bad.data(), t.num_bytes});
    } else {
      out.push_back({name, t.dtype, t.shape, t.data, t.num_bytes});
    }
  }
  const std::string in2 = tmp / "in2";
  fs::create_directories(in2);
  ASSERT_TRUE(io::write_safetensors(in2 + "/model.safetensors", out).ok());
  fs::copy_file(in + "/config.json", in2 + "/config.json");
  auto r = quantize_checkpoint(in2, tmp / "q", spec_for("nvfp4"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model.layers.0.mlp.up_proj.weight"), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(fs::exists(tmp / "q"));
}

TEST(Eval, PerplexityOfAUniformModelIsTheVocabSize) {
  // Invariant: identical model and base give KL 0 and top-1 agreement 1.
  TempDir tmp("quant_eval");
  const std::string in = tmp / "in";
  ASSERT_TRUE(model::write_random_checkpoint(in, tiny_spec()).ok());
  std::vector<int32_t> tokens(100);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 37) % 300);
  auto r = evaluate(in, in, tokens, 32, 1);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->num_windows, 3);
  EXPECT_EQ(r->num_scored, 3 * 15);
  EXPECT_NEAR(r->mean_kl, 0.0, 1e-9);
  EXPECT_EQ(r->top1_agreement, 1.0);
  EXPECT_DOUBLE_EQ(r->perplexity, r->base_perplexity);
  // Random weights: perplexity is near the vocab size.
  EXPECT_GT(r->perplexity, 100.0);
  EXPECT_LT(r->perplexity, 1000.0);
  // compare_rows against a hand-computed case: p = softmax(0, ln 3) = (1/4, 3/4), q uniform.
  const float base_row[2] = {0.0f, std::log(3.0f)}, model_row[2] = {0.0f, 0.0f};
  const RowStats s = compare_rows(model_row, base_row, 2, 1);
  EXPECT_NEAR(s.kl, 0.25 * std::log(0.5) + 0.75 * std::log(1.5), 1e-7);
  EXPECT_NEAR(s.nll_model, std::log(2.0), 1e-7);
  EXPECT_NEAR(s.nll_base, -std::log(0.75), 1e-7);
  EXPECT_FALSE(s.top1_equal);
}

}  // namespace
}  // namespace nibble::quant
