// The explicit model registry: Hugging Face architecture name -> loader. No static
// self-registration; adding an architecture means adding a row in registry.cpp.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/model.h"

namespace nibble::model {

using LoadFn = base::Result<std::unique_ptr<Model>> (*)(ModelConfig config, io::Checkpoint checkpoint,
                                                        const LoadOptions& options);

struct Architecture {
  std::string_view name;  // config.json `architectures[0]`
  LoadFn load;
};

const std::vector<Architecture>& architectures();
const Architecture* find_architecture(std::string_view name);
std::string supported_architecture_names();  // "LlamaForCausalLM, Qwen3ForCausalLM"

// One loader per architecture file.
base::Result<std::unique_ptr<Model>> load_qwen3(ModelConfig config, io::Checkpoint checkpoint,
                                                const LoadOptions& options);
base::Result<std::unique_ptr<Model>> load_llama(ModelConfig config, io::Checkpoint checkpoint,
                                                const LoadOptions& options);
base::Result<std::unique_ptr<Model>> load_gpt_oss(ModelConfig config, io::Checkpoint checkpoint,
                                                  const LoadOptions& options);
base::Result<std::unique_ptr<Model>> load_qwen3_moe(ModelConfig config, io::Checkpoint checkpoint,
                                                    const LoadOptions& options);

}  // namespace nibble::model
