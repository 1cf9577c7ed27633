// config.json / generation_config.json parsing: values as written, and errors naming the field.
#include "model/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace nibble::model {
namespace {

nlohmann::json qwen3_config() {
  // Qwen3-32B's values (formats.md §7.1).
  return {{"architectures", {"Qwen3ForCausalLM"}},
          {"hidden_size", 5120},
          {"intermediate_size", 25600},
          {"num_hidden_layers", 64},
          {"num_attention_heads", 64},
          {"num_key_value_heads", 8},
          {"head_dim", 128},
          {"max_position_embeddings", 40960},
          {"rope_theta", 1000000.0},
          {"rope_scaling", nullptr},
          {"rms_norm_eps", 1e-6},
          {"vocab_size", 151936},
          {"tie_word_embeddings", false},
          {"bos_token_id", 151643},
          {"eos_token_id", 151645},
          {"torch_dtype", "bfloat16"}};
}

nlohmann::json llama_config() {
  // Llama-3.3-70B's values (formats.md §7.2), no explicit head_dim.
  return {{"architectures", {"LlamaForCausalLM"}},
          {"hidden_size", 8192},
          {"intermediate_size", 28672},
          {"num_hidden_layers", 80},
          {"num_attention_heads", 64},
          {"num_key_value_heads", 8},
          {"max_position_embeddings", 131072},
          {"rope_theta", 500000.0},
          {"rope_scaling",
           {{"factor", 8.0},
            {"low_freq_factor", 1.0},
            {"high_freq_factor", 4.0},
            {"original_max_position_embeddings", 8192},
            {"rope_type", "llama3"}}},
          {"rms_norm_eps", 1e-5},
          {"vocab_size", 128256},
          {"bos_token_id", 128000},
          {"eos_token_id", {128001, 128008, 128009}}};
}

base::Result<ModelConfig> parse(const nlohmann::json& j) {
  return parse_model_config(j.dump(), "m/config.json");
}

TEST(ConfigTest, Qwen3) {
  auto c = parse(qwen3_config());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c->hidden_size, 5120);
  EXPECT_EQ(c->head_dim, 128);  // explicit: 64 heads * 128 != 5120
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kNone);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->bos_token_id, 151643);
  EXPECT_EQ(c->eos_token_ids, std::vector<int32_t>{151645});
  EXPECT_EQ(c->torch_dtype, "bfloat16");
}

TEST(ConfigTest, LlamaWithLlama3RopeAndEosList) {
  auto c = parse(llama_config());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->head_dim, 128);  // hidden / heads
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  // Legacy `type` key and transformers v5's `rope_parameters` (which carries rope_theta).
  auto j = llama_config();
  j["rope_scaling"].erase("rope_type");
  j["rope_scaling"]["type"] = "llama3";
  ASSERT_TRUE(parse(j).ok());
  auto v5 = llama_config();
  v5["rope_parameters"] = v5["rope_scaling"];
  v5["rope_parameters"]["rope_theta"] = 250000.0;
  v5.erase("rope_scaling");
  v5.erase("rope_theta");
  auto c5 = parse(v5);
  ASSERT_TRUE(c5.ok()) << c5.status().message();
  EXPECT_EQ(c5->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c5->rope_theta, 250000.0);
}

void expect_error(const nlohmann::json& j, const std::vector<std::string>& needles) {
  auto c = parse(j);
  ASSERT_FALSE(c.ok());
  for (const auto& n : needles)
    EXPECT_NE(c.status().message().find(n), std::string::npos) << c.status().message();
}

TEST(ConfigTest, ErrorsNameTheFieldAndFile) {
  auto j = qwen3_config();
  j["architectures"] = {"MistralForCausalLM"};
  expect_error(j, {"MistralForCausalLM", "LlamaForCausalLM", "Qwen3ForCausalLM", "m/config.json"});
  j = qwen3_config();
  j.erase("hidden_size");
  expect_error(j, {"m/config.json", "'hidden_size'", "missing"});
  j = qwen3_config();
  j["num_hidden_layers"] = "64";
  expect_error(j, {"'num_hidden_layers'", "integer", "string"});
  j = qwen3_config();
  j["num_key_value_heads"] = 7;
  expect_error(j, {"'num_key_value_heads'"});
  j = llama_config();
  j["rope_scaling"]["rope_type"] = "longrope";
  expect_error(j, {"'longrope'", "llama3", "yarn"});
  j = llama_config();
  j["rope_scaling"].erase("low_freq_factor");
  expect_error(j, {"low_freq_factor"});
  j = qwen3_config();
  j["tie_word_embeddings"] = 1;
  expect_error(j, {"'tie_word_embeddings'"});
  j = qwen3_config();
  j["eos_token_id"] = {1, "x"};
  expect_error(j, {"'eos_token_id'"});
  j = qwen3_config();
  j["attention_bias"] = true;
  expect_error(j, {"'attention_bias'"});
  EXPECT_FALSE(parse_model_config("{not json", "m/config.json").ok());
  EXPECT_FALSE(parse_model_config("[1]", "m/config.json").ok());
}

nlohmann::json gpt_oss_config() {
  // gpt-oss-120b's HF config.json values (formats.md §3.3, §7.3); layer_types left to the default.
  return {{"architectures", {"GptOssForCausalLM"}},
          {"hidden_size", 2880},
          {"intermediate_size", 2880},
          {"num_hidden_layers", 36},
          {"num_attention_heads", 64},
          {"num_key_value_heads", 8},
          {"head_dim", 64},
          {"num_local_experts", 128},
          {"num_experts_per_tok", 4},
          {"sliding_window", 128},
          {"swiglu_limit", 7.0},
          {"attention_bias", true},
          {"max_position_embeddings", 131072},
          {"rope_theta", 150000},
          {"rope_scaling",
           {{"rope_type", "yarn"},
            {"factor", 32.0},
            {"beta_fast", 32.0},
            {"beta_slow", 1.0},
            {"original_max_position_embeddings", 4096},
            {"truncate", false}}},
          {"rms_norm_eps", 1e-5},
          {"vocab_size", 201088},
          {"quantization_config", {{"quant_method", "mxfp4"}}}};
}

TEST(ConfigTest, GptOss) {
  auto c = parse(gpt_oss_config());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->attention_bias);
  EXPECT_EQ(c->moe.num_experts, 128);
  EXPECT_EQ(c->moe.num_experts_per_tok, 4);
  EXPECT_EQ(c->moe.expert_intermediate_size, 2880);
  EXPECT_DOUBLE_EQ(c->moe.swiglu_limit, 7.0);
  EXPECT_DOUBLE_EQ(c->moe.swiglu_alpha, 1.702);
  EXPECT_EQ(c->sliding_window, 128);
  ASSERT_EQ(c->layer_types.size(), 36u);
  EXPECT_EQ(c->layer_types[0], LayerType::kSlidingAttention);
  EXPECT_EQ(c->layer_types[1], LayerType::kFullAttention);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kYarn);
  EXPECT_FALSE(c->rope_scaling.truncate);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 4096);
  auto j = gpt_oss_config();
  j["layer_types"] = {"full_attention"};
  expect_error(j, {"'layer_types'", "36"});
  j = gpt_oss_config();
  j["num_experts_per_tok"] = 200;
  expect_error(j, {"'num_experts_per_tok'"});
  j = gpt_oss_config();
  j["rope_scaling"].erase("original_max_position_embeddings");
  expect_error(j, {"original_max_position_embeddings", "yarn"});
}

TEST(ConfigTest, Qwen3MoeSparseLayers) {
  auto j = qwen3_config();
  j["architectures"] = {"Qwen3MoeForCausalLM"};
  j["num_experts"] = 128;
  j["num_experts_per_tok"] = 8;
  j["moe_intermediate_size"] = 768;
  j["norm_topk_prob"] = true;
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  auto c = parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->moe.num_experts, 128);
  EXPECT_EQ(c->moe.expert_intermediate_size, 768);
  EXPECT_TRUE(c->moe.norm_topk_prob);
  EXPECT_EQ(c->moe.decoder_sparse_step, 2);
  EXPECT_EQ(c->moe.mlp_only_layers, (std::vector<int64_t>{3}));
  j.erase("moe_intermediate_size");
  expect_error(j, {"'moe_intermediate_size'"});
}

TEST(ConfigTest, GenerationConfig) {
  auto g = parse_generation_config(
      R"({"do_sample": true, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "eos_token_id": [151645, 151643],
          "bos_token_id": 151643})",
      "m/generation_config.json");
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->do_sample, true);
  EXPECT_FLOAT_EQ(*g->temperature, 0.6f);
  EXPECT_FLOAT_EQ(*g->top_p, 0.95f);
  EXPECT_EQ(*g->top_k, 20);
  EXPECT_FALSE(g->min_p.has_value());
  EXPECT_EQ(g->eos_token_ids, (std::vector<int32_t>{151645, 151643}));
  auto bad = parse_generation_config(R"({"top_p": 1.5})", "m/generation_config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'top_p'"), std::string::npos);
}

}  // namespace
}  // namespace nibble::model
