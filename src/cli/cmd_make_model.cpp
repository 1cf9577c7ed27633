// `nibble make-model OUT --arch qwen3|llama --preset tiny|small|0.6b ...`: a random-weight
// Hugging Face checkpoint for tests and benchmarks (see model/random_checkpoint.h).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "model/random_checkpoint.h"

namespace nibble::cli {

void add_make_model(CLI::App& app, CommandFn* run) {
  CLI::App* cmd = app.add_subcommand("make-model", "Write a Hugging Face checkpoint with random weights");
  auto spec = std::make_shared<model::RandomModelSpec>();
  auto out = std::make_shared<std::string>();
  auto tie = std::make_shared<bool>(false);
  auto ints = std::make_shared<std::array<int64_t, 9>>();
  cmd->add_option("OUT", *out, "Output folder")->required();
  cmd->add_option("--arch", spec->arch, "Architecture: qwen3 | llama | gpt-oss | qwen3-moe")
      ->check(CLI::IsMember({"qwen3", "llama", "gpt-oss", "qwen3-moe"}));
  cmd->add_option("--preset", spec->preset, "Shapes: tiny | small | 0.6b (Qwen3-0.6B)")
      ->check(CLI::IsMember({"tiny", "small", "0.6b"}));
  cmd->add_option("--seed", spec->seed, "Random seed (same seed, same bytes on every machine)");
  cmd->add_option("--tokenizer", spec->tokenizer_dir, "Copy tokenizer files from this folder");
  CLI::Option* tie_opt =
      cmd->add_flag("--tie,!--no-tie", *tie, "Tie lm_head to the embeddings (preset default)");
  cmd->add_option("--dtype", spec->dtype, "Weight dtype: bf16 | f16 | f32")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}));
  cmd->add_option("--init-std", spec->init_std, "Std of linear/embedding weights (default 0.02)");
  cmd->add_option("--rope-scaling", spec->rope_scaling, "RoPE scaling: llama3 (Llama 3.1 factors)")
      ->check(CLI::IsMember({"llama3"}));
  const char* names[9] = {"--hidden-size",  "--num-layers",  "--num-heads",
                          "--num-kv-heads", "--head-dim",    "--intermediate-size",
                          "--vocab-size",   "--num-experts", "--experts-per-tok"};
  CLI::Option* int_opts[9];
  for (int i = 0; i < 9; ++i) {
    int_opts[i] = cmd->add_option(names[i], (*ints)[static_cast<size_t>(i)], "Override the preset")
                      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  }
  cmd->callback([run, spec, out, tie, tie_opt, ints, int_opts0 = std::to_array(int_opts)] {
    if (tie_opt->count() > 0) spec->tie_word_embeddings = *tie;
    std::optional<int64_t>* targets[9] = {
        &spec->hidden_size,         &spec->num_hidden_layers, &spec->num_attention_heads,
        &spec->num_key_value_heads, &spec->head_dim,          &spec->intermediate_size,
        &spec->vocab_size,          &spec->num_experts,       &spec->num_experts_per_tok};
    for (size_t i = 0; i < 9; ++i) {
      if (int_opts0[i]->count() > 0) *targets[i] = (*ints)[i];
    }
    *run = [spec, out] {
      const base::Status st = model::write_random_checkpoint(*out, *spec);
      if (!st.ok()) return report_error(st);
      std::fprintf(stderr, "wrote %s (%s, preset %s, seed %llu)\n", out->c_str(), spec->arch.c_str(),
                   spec->preset.c_str(), static_cast<unsigned long long>(spec->seed));
      return 0;
    };
  });
}

}  // namespace nibble::cli
