// Bad checkpoints: every failure is one error naming the file/tensor at fault, exit status 2 from
// the CLI, never a crash (this test also runs under ASan/UBSan).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "base/file_util.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/random_checkpoint.h"
#include "model_test_util.h"

namespace nibble {
namespace {

using testing_util::run_nibble;
using testing_util::TempDir;
namespace fs = std::filesystem;

// A tiny qwen3 checkpoint (untied, so lm_head.weight exists) in a fresh temp dir.
class LoadErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model::RandomModelSpec spec;
    spec.arch = "qwen3";
    spec.preset = "tiny";
    spec.seed = 3;
    spec.tie_word_embeddings = false;
    ASSERT_TRUE(model::write_random_checkpoint(good_.path(), spec).ok());
  }

  // Copies the good checkpoint into `dir`, rewriting model.safetensors through `edit`.
  void rewrite(const std::string& dir, const std::function<void(std::vector<io::TensorToWrite>&)>& edit) {
    fs::copy_file(good_ / "config.json", fs::path(dir) / "config.json");
    auto ckpt = io::Checkpoint::open(good_.path());
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
    std::vector<io::TensorToWrite> tensors;
    for (const auto& name : ckpt->names()) {
      const io::TensorInfo* t = ckpt->find(name);
      tensors.push_back({t->name, t->dtype, t->shape, t->data, t->num_bytes});
    }
    edit(tensors);
    ASSERT_TRUE(io::write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors).ok());
  }

  static std::string load_error(const std::string& dir) {
    auto m = model::load_model(dir, {});
    EXPECT_FALSE(m.ok());
    return m.ok() ? std::string() : m.status().message();
  }

  TempDir good_{"good"};
  TempDir bad_{"bad"};
};

TEST_F(LoadErrorsTest, GoodCheckpointLoads) {
  auto m = model::load_model(good_.path(), {});
  ASSERT_TRUE(m.ok()) << m.status().message();
}

TEST_F(LoadErrorsTest, MissingFolderConfigOrWeights) {
  EXPECT_NE(load_error(bad_ / "nope").find("nope"), std::string::npos);
  fs::copy_file(good_ / "model.safetensors", bad_ / "model.safetensors");
  EXPECT_NE(load_error(bad_.path()).find("config.json"), std::string::npos);
  fs::remove(bad_ / "model.safetensors");
  fs::copy_file(good_ / "config.json", bad_ / "config.json");
  EXPECT_NE(load_error(bad_.path()).find("model.safetensors"), std::string::npos);
}

TEST_F(LoadErrorsTest, TruncatedWeightsAtManyLengths) {
  fs::copy_file(good_ / "config.json", bad_ / "config.json");
  auto bytes = base::read_file(good_ / "model.safetensors");
  ASSERT_TRUE(bytes.ok());
  const size_t full = bytes->size();
  for (size_t len : {size_t{0}, size_t{4}, size_t{8}, size_t{100}, full / 2, full - 1}) {
    ASSERT_TRUE(base::write_file_atomic(bad_ / "model.safetensors", bytes->substr(0, len)).ok());
    EXPECT_NE(load_error(bad_.path()).find("model.safetensors"), std::string::npos) << "length " << len;
  }
}

TEST_F(LoadErrorsTest, WrongShapeNamesTensorAndShapes) {
  rewrite(bad_.path(), [](auto& tensors) {
    for (auto& t : tensors) {
      if (t.name == "model.layers.1.mlp.up_proj.weight") t.shape = {64, 128};
    }
  });
  const std::string msg = load_error(bad_.path());
  EXPECT_NE(msg.find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected shape [128, 64], got [64, 128]"), std::string::npos) << msg;
}

TEST_F(LoadErrorsTest, WrongDtypeNamesTensorAndDtype) {
  std::vector<uint8_t> ints;
  rewrite(bad_.path(), [&](auto& tensors) {
    for (auto& t : tensors) {
      if (t.name == "model.layers.0.self_attn.q_proj.weight") {
        ints.assign(t.num_bytes * 2, 0);  // same shape as I32: twice the bytes of BF16
        t.dtype = tensor::DType::kI32;
        t.data = ints.data();
        t.num_bytes = ints.size();
      }
    }
  });
  const std::string msg = load_error(bad_.path());
  EXPECT_NE(msg.find("model.layers.0.self_attn.q_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("I32"), std::string::npos) << msg;
}

TEST_F(LoadErrorsTest, MissingTensorIsNamed) {
  for (const std::string missing :
       {"model.layers.0.self_attn.k_norm.weight", "lm_head.weight", "model.norm.weight"}) {
    TempDir dir("missing");
    rewrite(dir.path(), [&](auto& tensors) {
      std::erase_if(tensors, [&](const io::TensorToWrite& t) { return t.name == missing; });
    });
    const std::string msg = load_error(dir.path());
    EXPECT_NE(msg.find("'" + missing + "'"), std::string::npos) << msg;
  }
}

TEST_F(LoadErrorsTest, CliReportsOneLineAndExitStatus2) {
  rewrite(bad_.path(), [](auto& tensors) {
    std::erase_if(tensors,
                  [](const io::TensorToWrite& t) { return t.name == "model.layers.1.mlp.down_proj.weight"; });
  });
  auto r = run_nibble({"run", bad_.path(), "--prompt-ids", "1,2,3", "-n", "4", "--temp", "0"}, true);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output.rfind("nibble: error: ", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("model.layers.1.mlp.down_proj.weight"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;

  r = run_nibble({"run", good_.path(), "--prompt-ids", "1,99999", "-n", "4"}, true);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("99999"), std::string::npos) << r.output;

  r = run_nibble({"run", good_.path(), "-p", "Hello"}, true);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("tokenizer"), std::string::npos) << r.output;

  r = run_nibble({"run", bad_ / "absent", "--prompt-ids", "1"}, true);
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(LoadErrorsTest, SeededSamplingIsReproducibleThroughTheCli) {
  const std::vector<std::string> args = {"run",    good_.path(), "--prompt-ids", "5,6,7",       "-n",
                                         "12",     "--temp",     "1.0",          "--top-p",     "0.9",
                                         "--seed", "7",          "--print-ids",  "--ignore-eos"};
  const auto a = run_nibble(args, false), b = run_nibble(args, false);
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.output.front(), '[');
}

}  // namespace
}  // namespace nibble
