// Checkpoint (single, folder, sharded), ShardedWriter, and the goldens written by the reference
// safetensors package (tests/conformance/gen_safetensors_goldens.py).
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/test_util.h"

namespace nibble::io {
namespace {

using base::ErrorCode;
using tensor::DType;
using testing::expect_error;
using testing::make_image;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

const std::string kGoldenDir = std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/safetensors";

// An image with one U8 tensor per name, each holding one byte: its first letter.
std::string u8_image(const std::vector<std::string>& names) {
  std::string header = "{";
  std::string data;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) header += ",";
    header += "\"" + names[i] + "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" + std::to_string(i) +
              "," + std::to_string(i + 1) + "]}";
    data += names[i][0];
  }
  return make_image(header + "}", data);
}

std::string index_json(const std::map<std::string, std::string>& weight_map) {
  nlohmann::json index = {{"metadata", {{"total_size", 12345}}}, {"weight_map", weight_map}};
  return index.dump(2);
}

// ---------------------------------------------------------------------------------------------
// Checkpoint::open

TEST(Checkpoint, SingleFileFolderAndPath) {
  TempDir dir;
  write_bytes(dir.file("model.safetensors"), u8_image({"a", "b"}));
  for (const std::string& path : {dir.path(), dir.file("model.safetensors")}) {
    SCOPED_TRACE(path);
    auto ckpt = Checkpoint::open(path);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
    EXPECT_EQ(ckpt->names(), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(ckpt->total_bytes(), 2u);
    EXPECT_EQ(ckpt->dir(), dir.path());
    auto b = ckpt->get("b");
    ASSERT_TRUE(b.ok());
    EXPECT_EQ((*b)->data[0], 'b');
    EXPECT_EQ(*(*b)->file, dir.file("model.safetensors"));
    expect_error(ckpt->get("zz").status(), ErrorCode::kNotFound, {"\"zz\"", dir.path()});
    EXPECT_EQ(ckpt->find("zz"), nullptr);
  }
}

TEST(Checkpoint, SingleFileWinsOverIndex) {
  TempDir dir;
  write_bytes(dir.file("model.safetensors"), u8_image({"a"}));
  write_bytes(dir.file("model.safetensors.index.json"), "not json");
  auto ckpt = Checkpoint::open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  EXPECT_EQ(ckpt->names(), std::vector<std::string>{"a"});
}

TEST(Checkpoint, ShardedFolder) {
  TempDir dir;
  write_bytes(dir.file("s1.safetensors"), u8_image({"a", "b"}));
  write_bytes(dir.file("s2.safetensors"), u8_image({"c", "extra"}));
  write_bytes(dir.file("model.safetensors.index.json"),
              index_json({{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"c", "s2.safetensors"}}));
  for (const std::string& path : {dir.path(), dir.file("model.safetensors.index.json")}) {
    auto ckpt = Checkpoint::open(path);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
    // "extra" is in a shard but not in the index: loaded anyway (like vLLM).
    EXPECT_EQ(ckpt->names(), (std::vector<std::string>{"a", "b", "c", "extra"}));
    EXPECT_EQ(ckpt->files().size(), 2u);
    EXPECT_EQ(*ckpt->find("c")->file, dir.file("s2.safetensors"));
    EXPECT_EQ(ckpt->find("c")->data[0], 'c');
    EXPECT_EQ(ckpt->total_bytes(), 4u);  // total_size in the index (12345) is not used
  }
}

TEST(Checkpoint, Errors) {
  {
    TempDir dir;
    expect_error(Checkpoint::open(dir.path()).status(), ErrorCode::kNotFound,
                 {dir.path(), "no model.safetensors or model.safetensors.index.json"});
    expect_error(Checkpoint::open(dir.file("missing")).status(), ErrorCode::kNotFound, {dir.file("missing")});
  }
  struct Case {
    const char* label;
    std::string index;
    ErrorCode code;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"missing shard",
       index_json({{"a", "s1.safetensors"}, {"q", "gone.safetensors"}}),
       ErrorCode::kNotFound,
       {"shard \"gone.safetensors\"", "tensor \"q\"", "gone.safetensors: cannot open"}},
      {"tensor absent from its shard",
       index_json({{"a", "s1.safetensors"}, {"c", "s1.safetensors"}}),
       ErrorCode::kCorrupt,
       {"tensor \"c\" is listed in shard \"s1.safetensors\"", "does not hold it"}},
      {"tensor in two shards",
       index_json({{"a", "s1.safetensors"}, {"b", "s3.safetensors"}}),
       ErrorCode::kCorrupt,
       {"s3.safetensors: tensor \"b\" is also in", "s1.safetensors"}},
      {"broken shard",
       index_json({{"a", "s1.safetensors"}, {"z", "bad.safetensors"}}),
       ErrorCode::kCorrupt,
       {"shard \"bad.safetensors\"", "bad.safetensors: header does not start"}},
      {"invalid JSON",
       "{\"weight_map\": {",
       ErrorCode::kCorrupt,
       {"model.safetensors.index.json", "invalid JSON"}},
      {"duplicate tensor in index",
       R"({"weight_map":{"a":"s1.safetensors","a":"s3.safetensors"}})",
       ErrorCode::kCorrupt,
       {"duplicate key \"a\" inside \"weight_map\""}},
      {"no weight_map", R"({"metadata":{}})", ErrorCode::kCorrupt, {"missing \"weight_map\""}},
      {"weight_map not an object",
       R"({"weight_map":[]})",
       ErrorCode::kCorrupt,
       {"\"weight_map\" is not an object"}},
      {"empty weight_map", R"({"weight_map":{}})", ErrorCode::kCorrupt, {"\"weight_map\" is empty"}},
      {"shard not a string",
       R"({"weight_map":{"a":1}})",
       ErrorCode::kCorrupt,
       {"tensor \"a\" is not a string"}},
      {"shard escapes the folder",
       R"({"weight_map":{"a":"../s1.safetensors"}})",
       ErrorCode::kCorrupt,
       {"tensor \"a\"", "not a relative path"}},
      {"absolute shard path",
       R"({"weight_map":{"a":"/etc/passwd"}})",
       ErrorCode::kCorrupt,
       {"not a relative path"}},
      {"index not an object", "[1]", ErrorCode::kCorrupt, {"not a JSON object"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    TempDir dir;
    write_bytes(dir.file("s1.safetensors"), u8_image({"a", "b"}));
    write_bytes(dir.file("s3.safetensors"), u8_image({"b"}));
    write_bytes(dir.file("bad.safetensors"), make_image("[]"));
    write_bytes(dir.file("model.safetensors.index.json"), c.index);
    auto ckpt = Checkpoint::open(dir.path());
    ASSERT_FALSE(ckpt.ok());
    EXPECT_EQ(ckpt.status().code(), c.code) << ckpt.status().message();
    for (const std::string& part : c.parts) {
      EXPECT_NE(ckpt.status().message().find(part), std::string::npos)
          << "message \"" << ckpt.status().message() << "\" lacks \"" << part << "\"";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ShardedWriter

struct Made {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

std::vector<Made> make_tensors(int count) {
  std::vector<Made> out;
  for (int i = 0; i < count; ++i) {
    Made m;
    m.name = "model.layers." + std::to_string(i) + ".weight";
    m.dtype = i % 3 == 0 ? DType::kBF16 : (i % 3 == 1 ? DType::kU8 : DType::kF32);
    m.shape = {4, i + 1};
    m.bytes.resize(*tensor::dtype_num_bytes(m.dtype, static_cast<uint64_t>(4 * (i + 1))));
    for (size_t k = 0; k < m.bytes.size(); ++k) m.bytes[k] = static_cast<uint8_t>(i * 31 + k);
    out.push_back(std::move(m));
  }
  return out;
}

void expect_checkpoint_holds(const Checkpoint& ckpt, const std::vector<Made>& tensors) {
  ASSERT_EQ(ckpt.names().size(), tensors.size());
  for (const Made& m : tensors) {
    SCOPED_TRACE(m.name);
    const TensorInfo* info = ckpt.find(m.name);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->dtype, m.dtype);
    EXPECT_EQ(info->shape, m.shape);
    ASSERT_EQ(info->num_bytes, m.bytes.size());
    EXPECT_EQ(std::memcmp(info->data, m.bytes.data(), m.bytes.size()), 0);
  }
}

TEST(ShardedWriter, RoundTripManyShards) {
  TempDir dir;
  const std::vector<Made> tensors = make_tensors(10);
  uint64_t total = 0;
  {
    auto writer = ShardedWriter::create(dir.path(), /*max_shard_bytes=*/64, {{"format", "pt"}});
    ASSERT_TRUE(writer.ok()) << writer.status().message();
    for (const Made& m : tensors) {
      ASSERT_TRUE((*writer)->add({m.name, m.dtype, m.shape, m.bytes.data(), m.bytes.size()}).ok());
      total += m.bytes.size();
    }
    // Nothing has a final name before finish().
    for (const std::string& name : dir.list()) EXPECT_EQ(name.rfind(".nibble-", 0), 0u) << name;
    ASSERT_TRUE((*writer)->finish().ok());
    EXPECT_EQ((*writer)->total_bytes(), total);
    expect_error((*writer)->finish(), ErrorCode::kInvalidArgument, {"twice"});
  }
  // Greedy packing into 64-byte shards. Tensor sizes: 8, 8, 48, 32, 20, 96, 56, 32, 144, 80 bytes
  // -> shards {0,1,2} (exactly 64), {3,4}, {5}, {6}, {7}, {8}, {9}: 7 shards.
  std::vector<std::string> expected_files;
  for (int k = 1; k <= 7; ++k)
    expected_files.push_back("model-0000" + std::to_string(k) + "-of-00007.safetensors");
  expected_files.push_back("model.safetensors.index.json");
  EXPECT_EQ(dir.list(), expected_files);

  const auto index = nlohmann::json::parse(read_bytes(dir.file("model.safetensors.index.json")));
  EXPECT_EQ(index["metadata"]["total_size"], total);
  const auto& weight_map = index["weight_map"];
  EXPECT_EQ(weight_map.size(), tensors.size());
  const std::vector<int> expected_shard = {1, 1, 1, 2, 2, 3, 4, 5, 6, 7};
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(weight_map[tensors[i].name].get<std::string>(),
              "model-0000" + std::to_string(expected_shard[i]) + "-of-00007.safetensors")
        << tensors[i].name;
  }

  auto ckpt = Checkpoint::open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  expect_checkpoint_holds(*ckpt, tensors);
  for (const auto& file : ckpt->files()) {
    EXPECT_EQ(file->metadata().at("format"), "pt");
    uint64_t shard_bytes = 0;
    for (const TensorInfo& t : file->tensors()) shard_bytes += t.num_bytes;
    EXPECT_TRUE(shard_bytes <= 64 || file->tensors().size() == 1) << file->path();
    // Exactly tiled, like the reference writer.
    EXPECT_EQ(read_bytes(file->path()).size(), 8 + file->header_num_bytes() + shard_bytes);
  }
}

TEST(ShardedWriter, OneShardIsModelSafetensors) {
  TempDir dir;
  const std::vector<Made> tensors = make_tensors(4);
  auto writer = ShardedWriter::create(dir.path());
  ASSERT_TRUE(writer.ok());
  // Added in reverse: the layout inside the shard does not depend on the order of add().
  for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
    ASSERT_TRUE((*writer)->add({it->name, it->dtype, it->shape, it->bytes.data(), it->bytes.size()}).ok());
  }
  ASSERT_TRUE((*writer)->finish().ok());
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ((*writer)->shard_names(), std::vector<std::string>{"model.safetensors"});
  auto ckpt = Checkpoint::open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  expect_checkpoint_holds(*ckpt, tensors);

  // Same bytes as write_safetensors given the tensors in order.
  TempDir other;
  std::vector<TensorToWrite> list;
  for (const Made& m : tensors) list.push_back({m.name, m.dtype, m.shape, m.bytes.data(), m.bytes.size()});
  ASSERT_TRUE(write_safetensors(other.file("model.safetensors"), list).ok());
  EXPECT_EQ(read_bytes(other.file("model.safetensors")), read_bytes(dir.file("model.safetensors")));
}

TEST(ShardedWriter, UnfinishedWriterLeavesNothing) {
  TempDir dir;
  const std::vector<Made> tensors = make_tensors(6);
  {
    auto writer = ShardedWriter::create(dir.path(), 16);
    ASSERT_TRUE(writer.ok());
    for (const Made& m : tensors) {
      ASSERT_TRUE((*writer)->add({m.name, m.dtype, m.shape, m.bytes.data(), m.bytes.size()}).ok());
    }
    EXPECT_FALSE(dir.list().empty());  // shards written so far, under temporary names
  }
  EXPECT_TRUE(dir.list().empty());
}

TEST(ShardedWriter, RejectsBadInput) {
  TempDir dir;
  expect_error(ShardedWriter::create(dir.file("nope")).status(), ErrorCode::kNotFound, {"nope"});
  expect_error(ShardedWriter::create(dir.path(), 0).status(), ErrorCode::kInvalidArgument, {"positive"});
  auto writer = ShardedWriter::create(dir.path());
  ASSERT_TRUE(writer.ok());
  const std::vector<uint8_t> bytes(8, 0);
  ASSERT_TRUE((*writer)->add({"w", DType::kF32, {2}, bytes.data(), 8}).ok());
  expect_error((*writer)->add({"w", DType::kF32, {2}, bytes.data(), 8}), ErrorCode::kInvalidArgument,
               {"tensor \"w\" added twice"});
  expect_error((*writer)->add({"v", DType::kF32, {3}, bytes.data(), 8}), ErrorCode::kInvalidArgument,
               {"tensor \"v\"", "needs 12"});
  ASSERT_TRUE((*writer)->finish().ok());
  expect_error((*writer)->add({"x", DType::kF32, {2}, bytes.data(), 8}), ErrorCode::kInvalidArgument,
               {"after finish"});
}

TEST(ShardedWriter, EmptyCheckpoint) {
  TempDir dir;
  auto writer = ShardedWriter::create(dir.path());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->finish().ok());
  auto ckpt = Checkpoint::open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  EXPECT_TRUE(ckpt->names().empty());
}

// ---------------------------------------------------------------------------------------------
// Goldens from the reference implementation.

nlohmann::json load_expected() {
  return nlohmann::json::parse(read_bytes(kGoldenDir + "/expected.json"));
}

std::string hex(const uint8_t* data, uint64_t num_bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (uint64_t i = 0; i < num_bytes; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

void expect_matches_golden(const Checkpoint& ckpt, const nlohmann::json& expected) {
  ASSERT_EQ(ckpt.names().size(), expected["tensors"].size());
  for (const auto& row : expected["tensors"]) {
    const std::string name = row["name"];
    SCOPED_TRACE(name);
    const TensorInfo* info = ckpt.find(name);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(tensor::dtype_name(info->dtype), row["dtype"].get<std::string>());
    EXPECT_EQ(info->shape, row["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(hex(info->data, info->num_bytes), row["hex"].get<std::string>());
  }
  for (const auto& file : ckpt.files()) {
    EXPECT_EQ(file->metadata(), (expected["metadata"].get<std::map<std::string, std::string>>()));
  }
}

TEST(SafetensorsGolden, ReadsReferenceFilesExactly) {
  const nlohmann::json expected = load_expected();
  ASSERT_TRUE(expected.contains("files"));
  for (const char* name : {"all_dtypes.safetensors", "empty.safetensors", "sharded"}) {
    SCOPED_TRACE(name);
    auto ckpt = Checkpoint::open(kGoldenDir + "/" + name);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
    expect_matches_golden(*ckpt, expected["files"][name]);
  }
  // The sharded golden: each tensor sits in the shard the index names.
  auto sharded = Checkpoint::open(kGoldenDir + "/sharded");
  ASSERT_TRUE(sharded.ok());
  EXPECT_GE(sharded->files().size(), 2u);
  for (const auto& [tensor_name, shard] : expected["files"]["sharded"]["weight_map"].items()) {
    EXPECT_EQ(*sharded->find(tensor_name)->file, kGoldenDir + "/sharded/" + shard.get<std::string>());
  }
}

TEST(SafetensorsGolden, WriterReproducesReferenceBytes) {
  // Rewrite each single-file golden from what nibble read, in scrambled order: the bytes must equal
  // those written by safetensors.torch.save_file (same layout order, header and padding).
  for (const char* name : {"all_dtypes.safetensors", "empty.safetensors"}) {
    SCOPED_TRACE(name);
    const std::string path = kGoldenDir + "/" + name;
    auto file = SafetensorsFile::open(path);
    ASSERT_TRUE(file.ok()) << file.status().message();
    std::vector<TensorToWrite> tensors;
    for (const TensorInfo& t : (*file)->tensors())
      tensors.push_back({t.name, t.dtype, t.shape, t.data, t.num_bytes});
    std::reverse(tensors.begin(), tensors.end());
    TempDir dir;
    ASSERT_TRUE(write_safetensors(dir.file(name), tensors, (*file)->metadata()).ok());
    EXPECT_EQ(read_bytes(dir.file(name)), read_bytes(path));
  }
}

}  // namespace
}  // namespace nibble::io
