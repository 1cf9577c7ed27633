// Byte counts per format against formats.md's tensor layouts, computed by hand.
#include "plan/weights.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "plan/model_shape.h"

namespace nibble::plan {
namespace {

TEST(WeightFormat, MatrixBytesFollowTheCheckpointLayouts) {
  // Qwen3-32B mlp.gate_proj [25600, 5120].
  const int64_t out = 25600, in = 5120, n = out * in;
  EXPECT_EQ(matrix_bytes(weight_format(WeightFormatId::kBf16), out, in), 2 * n);
  // FP8 per tensor: F8_E4M3 [out, in] + F32 weight_scale + F32 input_scale (formats.md 4.1).
  EXPECT_EQ(matrix_bytes(weight_format(WeightFormatId::kFp8), out, in), n + 8);
  // FP8 block: + F32 weight_scale_inv [200, 40] (formats.md 4.2).
  EXPECT_EQ(matrix_bytes(weight_format(WeightFormatId::kFp8Block), out, in), n + 200 * 40 * 4);
  // NVFP4: U8 [out, in/2] + E4M3 [out, in/16] + F32 weight_scale_2 + F32 input_scale (formats.md 2.4).
  EXPECT_EQ(matrix_bytes(weight_format(WeightFormatId::kNvfp4), out, in), n / 2 + out * (in / 16) + 8);
  // MXFP4 (gpt-oss): U8 blocks [out, in/32, 16] + E8M0 scales [out, in/32] (formats.md 3.3).
  EXPECT_EQ(matrix_bytes(weight_format(WeightFormatId::kMxfp4), 5760, 2880), 5760 * 90 * 16 + 5760 * 90);
  // FP8 per channel: F32 weight_scale [out].
  EXPECT_EQ(matrix_bytes(weight_format(WeightFormatId::kFp8Channel), out, in), n + out * 4);
}

TEST(WeightFormat, BlockScalesCoverEdgeTiles) {
  // [200, 300]: ceil(200/128) = 2 by ceil(300/128) = 3 tiles of F32.
  EXPECT_EQ(matrix_bytes(weight_format(WeightFormatId::kFp8Block), 200, 300), 200 * 300 + 2 * 3 * 4);
  EXPECT_EQ(matrix_scale_bytes(weight_format(WeightFormatId::kFp8Block), 200, 300), 24);
  // NVFP4 with in = 40: ceil(40/16) = 3 scales per row.
  EXPECT_EQ(matrix_bytes(weight_format(WeightFormatId::kNvfp4), 2, 40), 40 + 2 * 3 + 8);
}

TEST(WeightFormat, ParseFormatChoice) {
  EXPECT_EQ(*parse_format_choice("nvfp4"), FormatChoice::kNvfp4);
  EXPECT_EQ(*parse_format_choice("as-is"), FormatChoice::kAsIs);
  EXPECT_EQ(*parse_format_choice("fp8-block"), FormatChoice::kFp8Block);
  const auto bad = parse_format_choice("int4");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("int4"), std::string::npos);
}

TEST(IgnoreList, MatchesLikeVllmAndCompressedTensors) {
  const std::vector<std::string> gpt_oss = {"model.layers.*.self_attn", "model.layers.*.mlp.router",
                                            "model.embed_tokens", "lm_head"};
  EXPECT_TRUE(module_ignored("model.layers.7.self_attn.q_proj", gpt_oss));
  EXPECT_TRUE(module_ignored("lm_head", gpt_oss));
  EXPECT_FALSE(module_ignored("model.layers.7.mlp.experts", gpt_oss));
  EXPECT_TRUE(module_ignored("model.layers.0.mlp.gate", {"re:.*mlp.gate$"}));
  EXPECT_FALSE(module_ignored("model.layers.0.mlp.gate_proj", {"re:.*mlp.gate$"}));
  EXPECT_TRUE(module_ignored("model.layers.3.self_attn.o_proj", {"model.layers.3"}));
  EXPECT_FALSE(module_ignored("model.layers.30.self_attn.o_proj", {"model.layers.3"}));
  EXPECT_FALSE(module_ignored("model.layers.0.mlp.up_proj", {"re:(unclosed"}));
}

ModelShape tiny_qwen3() {
  const nlohmann::json config = {{"architectures", {"Qwen3ForCausalLM"}},
                                 {"model_type", "qwen3"},
                                 {"hidden_size", 64},
                                 {"intermediate_size", 128},
                                 {"num_hidden_layers", 2},
                                 {"num_attention_heads", 4},
                                 {"num_key_value_heads", 2},
                                 {"head_dim", 32},
                                 {"vocab_size", 100},
                                 {"tie_word_embeddings", false}};
  auto shape = parse_model_config(config, "tiny.json");
  EXPECT_TRUE(shape.ok()) << shape.status().message();
  return *shape;
}

TEST(Tensors, Qwen3ListMatchesFormatsMd71) {
  const ModelShape m = tiny_qwen3();
  const auto tensors = enumerate_tensors(m);
  // embed + 2 × (2 norms + q,k,v,o + q_norm,k_norm + gate,up,down) + norm + lm_head.
  ASSERT_EQ(tensors.size(), 1u + 2 * 11 + 1 + 1);
  int64_t elems = 0;
  for (const TensorSpec& t : tensors) elems += t.num_elems();
  const int64_t per_layer = 2 * 64 + (128 * 64 + 2 * 64 * 64 + 64 * 128) + 2 * 32 + 3 * 128 * 64;
  EXPECT_EQ(elems, 2 * 100 * 64 + 2 * per_layer + 64);
  EXPECT_EQ(tensors[2].name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_TRUE(tensors[2].linear);
  EXPECT_EQ(tensors.back().name, "lm_head.weight");
  EXPECT_FALSE(tensors.back().linear);
}

TEST(Tensors, AsIsHonoursTheQuantizationConfig) {
  ModelShape m = tiny_qwen3();
  m.quant.method = "modelopt";
  m.quant.linear_format = WeightFormatId::kNvfp4;
  m.quant.ignore = {"model.layers.1.mlp*"};
  for (const TensorSpec& t : enumerate_tensors(m)) {
    const WeightFormatId f = tensor_format(m, t, FormatChoice::kAsIs);
    if (!t.linear) {
      EXPECT_EQ(f, WeightFormatId::kBf16) << t.name;
    } else if (t.module.rfind("model.layers.1.mlp", 0) == 0) {
      EXPECT_EQ(f, WeightFormatId::kBf16) << t.name;
    } else {
      EXPECT_EQ(f, WeightFormatId::kNvfp4) << t.name;
    }
  }
}

TEST(QuantConfig, RecognisesTheProducers) {
  using nlohmann::json;
  auto mx = parse_quant_config(json{{"quant_method", "mxfp4"}, {"modules_to_not_convert", {"lm_head"}}}, "c");
  ASSERT_TRUE(mx.ok());
  EXPECT_EQ(mx->linear_format, WeightFormatId::kMxfp4);
  EXPECT_EQ(mx->ignore.size(), 1u);
  auto fp8 = parse_quant_config(json{{"quant_method", "fp8"}, {"weight_block_size", {128, 128}}}, "c");
  ASSERT_TRUE(fp8.ok());
  EXPECT_EQ(fp8->linear_format, WeightFormatId::kFp8Block);
  auto mo = parse_quant_config(json{{"quant_method", "modelopt"},
                                    {"quant_algo", "NVFP4"},
                                    {"kv_cache_quant_algo", "FP8"},
                                    {"exclude_modules", {"lm_head"}}},
                               "c");
  ASSERT_TRUE(mo.ok());
  EXPECT_EQ(mo->linear_format, WeightFormatId::kNvfp4);
  EXPECT_EQ(mo->kv_dtype, KvDtype::kFp8);
  auto ct =
      parse_quant_config(json{{"quant_method", "compressed-tensors"},
                              {"format", "float-quantized"},
                              {"config_groups", {{"group_0", {{"weights", {{"strategy", "channel"}}}}}}}},
                         "c");
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(ct->linear_format, WeightFormatId::kFp8Channel);
  auto nv = parse_quant_config(json{{"quant_method", "compressed-tensors"},
                                    {"format", "nvfp4-pack-quantized"},
                                    {"ignore", {"lm_head", "re:.*mlp.gate$"}}},
                               "c");
  ASSERT_TRUE(nv.ok());
  EXPECT_EQ(nv->linear_format, WeightFormatId::kNvfp4);
  auto awq = parse_quant_config(json{{"quant_method", "awq"}}, "cfg.json");
  ASSERT_FALSE(awq.ok());
  EXPECT_EQ(awq.status().code(), base::ErrorCode::kUnsupported);
  EXPECT_NE(awq.status().message().find("awq"), std::string::npos);
}

TEST(ModelConfig, ErrorsNameTheField) {
  using nlohmann::json;
  json config = {{"model_type", "qwen3"},
                 {"vocab_size", 10},
                 {"num_hidden_layers", 1},
                 {"num_attention_heads", 1},
                 {"intermediate_size", 8}};
  auto missing = parse_model_config(config, "x/config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'hidden_size'"), std::string::npos);
  EXPECT_NE(missing.status().message().find("x/config.json"), std::string::npos);
  config["hidden_size"] = "big";
  EXPECT_FALSE(parse_model_config(config, "x").ok());
  config["hidden_size"] = -4;
  EXPECT_FALSE(parse_model_config(config, "x").ok());
  config["hidden_size"] = 8;
  EXPECT_TRUE(parse_model_config(config, "x").ok());
  config["layer_types"] = {"sliding_attention", "full_attention"};  // 2 entries for 1 layer
  EXPECT_FALSE(parse_model_config(config, "x").ok());
  auto unknown = parse_model_config(json{{"model_type", "mamba"}}, "x");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), base::ErrorCode::kUnsupported);
  EXPECT_FALSE(parse_model_config(json::array(), "x").ok());
}

}  // namespace
}  // namespace nibble::plan

namespace nibble::plan {
namespace {

TEST(ModelConfig, RejectsImplausibleShapes) {
  using nlohmann::json;
  const json base = {{"model_type", "qwen3_moe"},
                     {"vocab_size", 100},
                     {"hidden_size", 64},
                     {"num_hidden_layers", 2},
                     {"num_attention_heads", 4},
                     {"num_key_value_heads", 2},
                     {"head_dim", 16},
                     {"num_experts", 4},
                     {"num_experts_per_tok", 2},
                     {"moe_intermediate_size", 32}};
  ASSERT_TRUE(parse_model_config(base, "x").ok());
  json too_many_k = base;
  too_many_k["num_experts_per_tok"] = 5;
  EXPECT_FALSE(parse_model_config(too_many_k, "x").ok());
  json deep = base;
  deep["num_hidden_layers"] = 100000;
  EXPECT_FALSE(parse_model_config(deep, "x").ok());
  json huge = base;
  huge["hidden_size"] = 1 << 24;
  huge["vocab_size"] = 1 << 24;
  huge["moe_intermediate_size"] = 1 << 24;
  EXPECT_FALSE(parse_model_config(huge, "x").ok());
  json wide_kv = base;
  wide_kv["num_key_value_heads"] = 1 << 20;
  wide_kv["num_hidden_layers"] = 1000;
  EXPECT_FALSE(parse_model_config(wide_kv, "x").ok());
}

}  // namespace
}  // namespace nibble::plan
