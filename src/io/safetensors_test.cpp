// SafetensorsFile parsing and validation, write_safetensors round trips.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "io/test_util.h"

namespace nibble::io {
namespace {

using base::ErrorCode;
using tensor::DType;
using testing::expect_error;
using testing::make_image;
using testing::TempDir;

constexpr const char* kFile = "bad.safetensors";

base::Result<std::unique_ptr<SafetensorsFile>> parse(const std::string& image) {
  return SafetensorsFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size(), kFile);
}

// ---------------------------------------------------------------------------------------------
// Hand-built images that must be accepted.

TEST(SafetensorsParse, MinimalImage) {
  const std::string image =
      make_image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcdefgh");
  auto file = parse(image);
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_EQ((*file)->tensors().size(), 1u);
  const TensorInfo* w = (*file)->find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::kF32);
  EXPECT_EQ(w->shape, std::vector<int64_t>{2});
  EXPECT_EQ(w->num_bytes, 8u);
  EXPECT_EQ(w->num_elems(), 2);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(w->data), 8), "abcdefgh");
  EXPECT_EQ(*w->file, kFile);
  EXPECT_EQ((*file)->find("x"), nullptr);
}

TEST(SafetensorsParse, EmptyHeaderAndWhitespacePadding) {
  auto empty = parse(make_image("{}"));
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_TRUE((*empty)->tensors().empty());

  // Spaces (the writer's padding) and other JSON whitespace after the object are fine.
  auto padded = parse(make_image("{\"__metadata__\":{\"a\":\"b\"}}   \n\t  "));
  ASSERT_TRUE(padded.ok()) << padded.status().message();
  EXPECT_EQ((*padded)->metadata().at("a"), "b");
}

TEST(SafetensorsParse, GapsAreAccepted) {
  // b starts 4 bytes after a ends, and 3 unused bytes follow b.
  const std::string header = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                             R"("b":{"dtype":"I16","shape":[1],"data_offsets":[6,8]}})";
  const std::string image = make_image(header, "AA....BBxyz");  // must outlive `file`
  auto file = parse(image);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*file)->find("b")->data), 2), "BB");
}

TEST(SafetensorsParse, ZeroDimAndZeroSizedTensors) {
  // A zero-byte tensor may sit anywhere in [0, data size], even inside another tensor's range.
  const std::string header = R"({"s":{"dtype":"BF16","shape":[],"data_offsets":[0,2]},)"
                             R"("e":{"dtype":"F32","shape":[3,0],"data_offsets":[1,1]},)"
                             R"("z":{"dtype":"F4","shape":[0],"data_offsets":[2,2]}})";
  const std::string image = make_image(header, "xy");
  auto file = parse(image);
  ASSERT_TRUE(file.ok()) << file.status().message();
  const TensorInfo* s = (*file)->find("s");
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->num_elems(), 1);
  EXPECT_EQ(s->num_bytes, 2u);
  EXPECT_EQ((*file)->find("e")->num_elems(), 0);
  EXPECT_EQ((*file)->find("e")->num_bytes, 0u);
  EXPECT_EQ((*file)->find("z")->num_bytes, 0u);
}

TEST(SafetensorsParse, TensorsSortedByNameAndExtraKeysIgnored) {
  const std::string header = R"({"zz":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("aa":{"dtype":"U8","shape":[1],"data_offsets":[1,2],"note":[1,2]}})";
  const std::string image = make_image(header, "12");
  auto file = parse(image);
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_EQ((*file)->tensors().size(), 2u);
  EXPECT_EQ((*file)->tensors()[0].name, "aa");
  EXPECT_EQ((*file)->tensors()[1].name, "zz");
}

TEST(SafetensorsParse, PackedDtypeSizes) {
  // F4: 6 elements in 3 bytes; F6: 4 elements in 3 bytes; F8_E8M0 one byte each.
  const std::string header = R"({"f4":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]},)"
                             R"("f6":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[3,6]},)"
                             R"("e8":{"dtype":"F8_E8M0","shape":[2],"data_offsets":[6,8]}})";
  const std::string image = make_image(header, "01234567");
  auto file = parse(image);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ((*file)->find("f4")->num_elems(), 6);
  EXPECT_EQ((*file)->find("f4")->num_bytes, 3u);
  EXPECT_EQ((*file)->find("f6")->dtype, DType::kF6E2M3);
}

// ---------------------------------------------------------------------------------------------
// Every validation error: the code, and a message naming the file and the tensor or field.

struct BadCase {
  const char* label;
  std::string image;
  ErrorCode code;
  std::vector<std::string> parts;  // besides the file name
};

std::string entry(const std::string& name, const std::string& body) {
  return "\"" + name + "\":{" + body + "}";
}

std::vector<BadCase> bad_cases() {
  const std::string ok_w = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
  const std::string data8(8, 'd');
  return {
      {"short file", std::string("\x05\0\0\0", 4), ErrorCode::kCorrupt, {"shorter than the 8-byte"}},
      {"header length over limit",
       make_image("{}", "", 100'000'001),
       ErrorCode::kCorrupt,
       {"exceeds the limit"}},
      {"header length past end",
       make_image("{}", "", 3),
       ErrorCode::kCorrupt,
       {"header length 3", "truncated"}},
      {"zero header length", make_image("", "{}", 0), ErrorCode::kCorrupt, {"does not start with '{'"}},
      {"header not an object", make_image("[1,2]"), ErrorCode::kCorrupt, {"does not start with '{'"}},
      {"leading space", make_image(" {}"), ErrorCode::kCorrupt, {"does not start with '{'"}},
      {"invalid JSON", make_image("{\"w\":"), ErrorCode::kCorrupt, {"header", "invalid JSON"}},
      {"trailing garbage", make_image("{}  x"), ErrorCode::kCorrupt, {"invalid JSON"}},
      {"NUL padding", make_image(std::string("{}\0\0", 4)), ErrorCode::kCorrupt, {"invalid JSON"}},
      {"invalid UTF-8", make_image("{\"w\xff\":{}}"), ErrorCode::kCorrupt, {"invalid JSON"}},
      {"entry not an object",
       make_image(R"({"w":[1]})"),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "not an object"}},
      {"missing dtype",
       make_image("{" + entry("w", R"("shape":[2],"data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "missing \"dtype\""}},
      {"dtype not a string",
       make_image("{" + entry("w", R"("dtype":7,"shape":[2],"data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "\"dtype\" is a number"}},
      {"unknown dtype",
       make_image("{" + entry("w", R"("dtype":"F12","shape":[2],"data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "unknown dtype \"F12\""}},
      {"lower-case dtype",
       make_image("{" + entry("w", R"("dtype":"f32","shape":[2],"data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "unknown dtype"}},
      {"missing shape",
       make_image("{" + entry("w", R"("dtype":"F32","data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "missing \"shape\""}},
      {"shape not an array",
       make_image("{" + entry("w", R"("dtype":"F32","shape":2,"data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "\"shape\" is a number"}},
      {"negative dim",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "shape[0] = -2"}},
      {"fractional dim",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[1,2.0],"data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "shape[1] = 2.0"}},
      {"string dim",
       make_image("{" + entry("w", R"("dtype":"F32","shape":["2"],"data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "shape[0]"}},
      {"dim beyond int64",
       make_image(
           "{" + entry("w", R"("dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8])") + "}",
           data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "shape[0]"}},
      {"shape overflow",
       make_image(
           "{" + entry("w", R"("dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,8])") + "}",
           data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "overflow"}},
      {"missing data_offsets",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[2])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "missing \"data_offsets\""}},
      {"data_offsets of three",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[2],"data_offsets":[0,8,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "\"data_offsets\" = [0,8,8]"}},
      {"negative offset",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[2],"data_offsets":[-1,7])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "data_offsets"}},
      {"float offset",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[2],"data_offsets":[0,8.0])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "data_offsets"}},
      {"offsets not an array",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[2],"data_offsets":{"a":0})") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "data_offsets"}},
      {"begin after end",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[0],"data_offsets":[8,0])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "begin > end"}},
      {"end past data",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[3],"data_offsets":[0,12])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "extend past the data area of 8 bytes"}},
      {"huge end",
       make_image(
           "{" +
               entry(
                   "w",
                   R"("dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,18446744073709551615])") +
               "}",
           data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\""}},
      {"byte length mismatch",
       make_image("{" + entry("w", R"("dtype":"F32","shape":[3],"data_offsets":[0,8])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "hold 8 bytes", "needs 12"}},
      {"F4 odd count",
       make_image("{" + entry("w", R"("dtype":"F4","shape":[3],"data_offsets":[0,2])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "3 elements of F4"}},
      {"F4 counted as bytes",
       make_image("{" + entry("w", R"("dtype":"F4","shape":[4],"data_offsets":[0,4])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "needs 2"}},
      {"F6 partial byte",
       make_image("{" + entry("w", R"("dtype":"F6_E3M2","shape":[2],"data_offsets":[0,2])") + "}", data8),
       ErrorCode::kCorrupt,
       {"tensor \"w\"", "2 elements of F6_E3M2"}},
      {"overlap",
       make_image("{" + entry("a", R"("dtype":"F32","shape":[1],"data_offsets":[0,4])") + "," +
                      entry("b", R"("dtype":"F32","shape":[1],"data_offsets":[2,6])") + "}",
                  data8),
       ErrorCode::kCorrupt,
       {"tensor \"b\"", "overlaps tensor \"a\""}},
      {"same range",
       make_image("{" + entry("a", ok_w) + "," + entry("b", ok_w) + "}", data8),
       ErrorCode::kCorrupt,
       {"overlaps", "\"a\"", "\"b\""}},
      {"nested overlap",
       make_image("{" + entry("big", R"("dtype":"U8","shape":[8],"data_offsets":[0,8])") + "," +
                      entry("small", R"("dtype":"U8","shape":[2],"data_offsets":[3,5])") + "}",
                  data8),
       ErrorCode::kCorrupt,
       {"overlaps", "\"big\"", "\"small\""}},
      {"duplicate tensor",
       make_image("{" + entry("w", ok_w) + "," + entry("w", ok_w) + "}", data8),
       ErrorCode::kCorrupt,
       {"duplicate key \"w\""}},
      {"duplicate field",
       make_image(R"({"w":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}})", data8),
       ErrorCode::kCorrupt,
       {"duplicate key \"dtype\" inside \"w\""}},
      {"metadata not an object",
       make_image(R"({"__metadata__":["a"]})"),
       ErrorCode::kCorrupt,
       {"header field \"__metadata__\"", "not an object"}},
      {"metadata value not a string",
       make_image(R"({"__metadata__":{"n":3}})"),
       ErrorCode::kCorrupt,
       {"header field \"__metadata__\"", "value of \"n\"", "not a string"}},
      {"metadata null", make_image(R"({"__metadata__":null})"), ErrorCode::kCorrupt, {"__metadata__"}},
      {"deep nesting", make_image("{\"w\":" + std::string(100, '[') + std::string(100, ']') + "}"),
       ErrorCode::kCorrupt, {"nesting deeper than 64"}},
      {"duplicate metadata",
       make_image(R"({"__metadata__":{},"__metadata__":{}})"),
       ErrorCode::kCorrupt,
       {"duplicate key \"__metadata__\""}},
  };
}

TEST(SafetensorsParse, EveryValidationError) {
  for (const BadCase& bad : bad_cases()) {
    SCOPED_TRACE(bad.label);
    auto file = parse(bad.image);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), bad.code) << file.status().message();
    const std::string& msg = file.status().message();
    EXPECT_EQ(msg.rfind(kFile, 0), 0u) << "message does not start with the file name: " << msg;
    for (const std::string& part : bad.parts) {
      EXPECT_NE(msg.find(part), std::string::npos) << "message \"" << msg << "\" lacks \"" << part << "\"";
    }
  }
}

TEST(SafetensorsParse, EveryTruncationOfAValidFileFailsCleanly) {
  const std::string image =
      make_image(R"({"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}})", "01234567");
  for (size_t n = 0; n < image.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string cut = image.substr(0, n);
    EXPECT_FALSE(parse(cut).ok());
  }
  EXPECT_TRUE(parse(image).ok());
}

TEST(SafetensorsParse, LongNamesAreCutInMessages) {
  const std::string name(5000, 'n');
  auto file = parse(make_image("{\"" + name + "\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,0]}}"));
  ASSERT_FALSE(file.ok());
  EXPECT_LT(file.status().message().size(), 400u);
}

TEST(SafetensorsOpen, MissingFileIsNotFound) {
  TempDir dir;
  auto file = SafetensorsFile::open(dir.file("nope.safetensors"));
  expect_error(file.status(), ErrorCode::kNotFound, {"nope.safetensors"});
}

TEST(SafetensorsOpen, ErrorNamesThePath) {
  TempDir dir;
  testing::write_bytes(dir.file("x.safetensors"), make_image(R"({"w":{"dtype":"F32"}})"));
  auto file = SafetensorsFile::open(dir.file("x.safetensors"));
  expect_error(file.status(), ErrorCode::kCorrupt,
               {dir.file("x.safetensors"), "tensor \"w\"", "missing \"shape\""});
}

TEST(SafetensorsOpen, LargeSparseFileNeedsOnlyItsHeader) {
  // A 1 GiB tensor in a sparse file: open maps it and parses the header without reading the data
  // (the file takes almost no disk space, and reading it would only see zeros).
  TempDir dir;
  const uint64_t num_bytes = uint64_t{1} << 30;
  const std::string header = R"({"big":{"dtype":"BF16","shape":[16384,32768],"data_offsets":[0,)" +
                             std::to_string(num_bytes) + "]}}";
  const std::string path = dir.file("big.safetensors");
  testing::write_bytes(path, make_image(header));
  std::filesystem::resize_file(path, 8 + header.size() + num_bytes);
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ((*file)->find("big")->num_bytes, num_bytes);
  EXPECT_EQ((*file)->find("big")->num_elems(), int64_t{16384} * 32768);
}

// ---------------------------------------------------------------------------------------------
// Writing.

// Deterministic bytes that differ per tensor.
std::vector<uint8_t> pattern_bytes(size_t num_bytes, uint32_t seed) {
  std::vector<uint8_t> out(num_bytes);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return out;
}

TEST(SafetensorsWrite, RoundTripEveryDtype) {
  TempDir dir;
  std::vector<std::vector<uint8_t>> buffers;
  buffers.reserve(tensor::kNumDTypes);  // pointers into them are kept
  std::vector<TensorToWrite> tensors;
  for (int i = 0; i < tensor::kNumDTypes; ++i) {
    const auto dtype = static_cast<DType>(i);
    const std::vector<int64_t> shape = {3, 4};  // 12 elements: whole bytes for F4 and F6 too
    const uint64_t num_bytes = *tensor::dtype_num_bytes(dtype, 12);
    buffers.push_back(pattern_bytes(num_bytes, static_cast<uint32_t>(i)));
    tensors.push_back(
        {"layer." + std::string(tensor::dtype_name(dtype)), dtype, shape, buffers.back().data(), num_bytes});
  }
  const std::string path = dir.file("all.safetensors");
  ASSERT_TRUE(write_safetensors(path, tensors, {{"format", "pt"}, {"producer", "nibble"}}).ok());
  EXPECT_EQ(dir.list(), std::vector<std::string>{"all.safetensors"});  // no temporary left

  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ((*file)->metadata().size(), 2u);
  EXPECT_EQ((*file)->metadata().at("producer"), "nibble");
  ASSERT_EQ((*file)->tensors().size(), tensors.size());
  EXPECT_EQ((*file)->header_num_bytes() % 8, 0u);
  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(tensors[i].name);
    const TensorInfo* info = (*file)->find(tensors[i].name);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->dtype, tensors[i].dtype);
    EXPECT_EQ(info->shape, tensors[i].shape);
    ASSERT_EQ(info->num_bytes, tensors[i].num_bytes);
    EXPECT_EQ(std::memcmp(info->data, buffers[i].data(), info->num_bytes), 0);
    total += info->num_bytes;
  }
  // Exact tiling: the file is header + the tensors' bytes, nothing else.
  EXPECT_EQ(testing::read_bytes(path).size(), 8 + (*file)->header_num_bytes() + total);
}

TEST(SafetensorsWrite, LayoutIsAlignedAndTiled) {
  TempDir dir;
  const std::vector<uint8_t> one(1, 7), two(2, 7), eight(8, 7), four(4, 7);
  // Given in an order that would misalign the F64 and F32 tensors if written as given.
  const std::vector<TensorToWrite> tensors = {
      {"c", DType::kU8, {1}, one.data(), 1},    {"b", DType::kBF16, {1}, two.data(), 2},
      {"a", DType::kF64, {1}, eight.data(), 8}, {"d", DType::kF32, {1}, four.data(), 4},
      {"e", DType::kF4, {2}, one.data(), 1},
  };
  const std::string path = dir.file("m.safetensors");
  ASSERT_TRUE(write_safetensors(path, tensors).ok());
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  const uint8_t* start = (*file)->find("a")->data;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(start) % 8, 0u);  // the mmap is page aligned, header padded to 8
  EXPECT_EQ((*file)->find("d")->data - start, 8);
  EXPECT_EQ((*file)->find("b")->data - start, 12);
  EXPECT_EQ((*file)->find("c")->data - start, 14);
  EXPECT_EQ((*file)->find("e")->data - start, 15);
}

TEST(SafetensorsWrite, ZeroDimAndZeroSized) {
  TempDir dir;
  const float scalar = 3.25f;
  const std::vector<TensorToWrite> tensors = {
      {"scalar", DType::kF32, {}, &scalar, 4},
      {"empty", DType::kBF16, {0, 5}, nullptr, 0},
      {"empty_f4", DType::kF4, {7, 0}, nullptr, 0},
  };
  const std::string path = dir.file("z.safetensors");
  ASSERT_TRUE(write_safetensors(path, tensors).ok());
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  const TensorInfo* s = (*file)->find("scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  float read = 0;
  std::memcpy(&read, s->data, 4);
  EXPECT_EQ(read, 3.25f);
  EXPECT_EQ((*file)->find("empty")->shape, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ((*file)->find("empty_f4")->num_bytes, 0u);
}

TEST(SafetensorsWrite, EmptyFileMatchesTheReferenceLayout) {
  TempDir dir;
  ASSERT_TRUE(write_safetensors(dir.file("e.safetensors"), {}).ok());
  EXPECT_EQ(testing::read_bytes(dir.file("e.safetensors")), make_image("{}      "));
}

TEST(SafetensorsWrite, RejectsBadInputAndLeavesNothing) {
  TempDir dir;
  const std::vector<uint8_t> bytes(16, 1);
  const std::string path = dir.file("w.safetensors");
  expect_error(write_safetensors(path, {{"w", DType::kF32, {3}, bytes.data(), 8}}),
               ErrorCode::kInvalidArgument, {path, "tensor \"w\"", "needs 12"});
  expect_error(write_safetensors(path, {{"w", DType::kF32, {2}, bytes.data(), 8},
                                        {"w", DType::kF32, {2}, bytes.data(), 8}}),
               ErrorCode::kInvalidArgument, {"tensor \"w\" given twice"});
  expect_error(write_safetensors(path, {{"w", DType::kF32, {-1}, bytes.data(), 0}}),
               ErrorCode::kInvalidArgument, {"negative dimension"});
  expect_error(write_safetensors(path, {{"w", DType::kF4, {3}, bytes.data(), 2}}),
               ErrorCode::kInvalidArgument, {"not whole bytes"});
  expect_error(write_safetensors(path, {{"__metadata__", DType::kU8, {1}, bytes.data(), 1}}),
               ErrorCode::kInvalidArgument, {"reserved"});
  expect_error(write_safetensors(path, {{"w\xff", DType::kU8, {1}, bytes.data(), 1}}),
               ErrorCode::kInvalidArgument, {"not valid UTF-8"});
  expect_error(write_safetensors(path, {{"w", DType::kU8, {1}, nullptr, 1}}), ErrorCode::kInvalidArgument,
               {"data is null"});
  EXPECT_TRUE(dir.list().empty());
  expect_error(write_safetensors(dir.file("no/such/dir/x.safetensors"), {}), ErrorCode::kIo,
               {"cannot create"});
  EXPECT_TRUE(dir.list().empty());
}

TEST(SafetensorsWrite, OverwritesAtomically) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  const std::vector<uint8_t> a(4, 0xAA), b(4, 0xBB);
  ASSERT_TRUE(write_safetensors(path, {{"w", DType::kU8, {4}, a.data(), 4}}).ok());
  auto first = SafetensorsFile::open(path);  // keeps the old inode mapped
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(write_safetensors(path, {{"w", DType::kU8, {4}, b.data(), 4}}).ok());
  auto second = SafetensorsFile::open(path);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*first)->find("w")->data[0], 0xAA);  // a rename, not an in-place rewrite
  EXPECT_EQ((*second)->find("w")->data[0], 0xBB);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"w.safetensors"});
}

}  // namespace
}  // namespace nibble::io
