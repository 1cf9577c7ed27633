// safetensors reading (mmap, single file or sharded with model.safetensors.index.json) and writing.
//
// Format (see ../shared/docs/formats.md §6): 8-byte little-endian header length N, N bytes of JSON
// header, then the data buffer. Every tensor's data_offsets are relative to the buffer start.
// Reading validates everything and every error names the file and the tensor (or header field).
//
// Reading rules (what nibble accepts; the Rust safetensors reader is stricter about layout):
//  - N <= 100,000,000 and 8 + N <= file size; the header starts with '{', is one JSON object and
//    may be followed by whitespace (the writer pads with spaces). Duplicate keys anywhere are an
//    error. Only the header is read at open: tensor bytes stay untouched in the mmap.
//  - Each entry: {"dtype": <string from tensor/dtype.h>, "shape": [non-negative ints],
//    "data_offsets": [begin, end]} with begin <= end <= data size and end - begin equal to the
//    byte size of shape × dtype (F4 two per byte, F6 packed: the count must fill whole bytes).
//    Extra keys in an entry are ignored. "__metadata__", when present, maps strings to strings.
//  - Tensors must not overlap (a zero-byte tensor overlaps nothing) and must lie inside the data
//    area, but GAPS ARE ACCEPTED: unused bytes between tensors or after the last one are ignored.
//    The Rust reader insists on exact tiling; nibble's writers always tile exactly, so files it
//    writes are readable by both.
//  - TensorInfo::data is not aligned in general (nibble's writers align every tensor to its
//    element size; other writers may not). Read through memcpy or check the alignment.
//
// Writing rules (both writers): header keys in layout order, "__metadata__" first when non-empty,
// compact JSON, padded with spaces so the data starts at a multiple of 8. Tensors are laid out in
// the Rust safetensors writer's order, whatever order the caller gives: widest dtype first (its
// `Dtype` enum in descending order), then by name. This keeps every tensor aligned to its element
// size and makes the output byte-identical to `safetensors.torch.save` for the same tensors (with at
// most one metadata key; nibble sorts metadata keys, Rust uses hash order).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "tensor/dtype.h"

namespace nibble::io {

// One tensor in a mapped checkpoint. `data` points into the mmap and lives as long as the file.
struct TensorInfo {
  std::string name;
  tensor::DType dtype = tensor::DType::kF32;
  std::vector<int64_t> shape;  // logical shape (for F4: element count, two per byte)
  const uint8_t* data = nullptr;
  uint64_t num_bytes = 0;
  const std::string* file = nullptr;  // path of the shard holding it

  int64_t num_elems() const;
};

// One .safetensors file, mapped and validated.
class SafetensorsFile {
 public:
  static base::Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  // Parses an in-memory image (used by the fuzz target and tests); `path` only names it in errors.
  // The bytes must outlive the returned object.
  static base::Result<std::unique_ptr<SafetensorsFile>> parse(const uint8_t* bytes, uint64_t num_bytes,
                                                              const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // sorted by name
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  uint64_t header_num_bytes() const { return header_num_bytes_; }  // N, the JSON header length

 private:
  base::Status parse_image(const uint8_t* bytes, uint64_t num_bytes);

  std::string path_;
  base::MappedFile file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  uint64_t header_num_bytes_ = 0;
};

// A checkpoint folder: model.safetensors, or model.safetensors.index.json + shards, or a single
// .safetensors file path (or the path of an index .json file).
//
// A folder holding both model.safetensors and an index uses model.safetensors (as transformers
// does). With an index, every shard named in "weight_map" is opened; a missing shard is kNotFound,
// a tensor the index lists but its shard lacks is kCorrupt, and a tensor found in two shards is
// kCorrupt. Tensors a shard holds but the index does not list are loaded too (as vLLM does).
// "metadata.total_size" is informational and never checked (writers disagree on its meaning).
class Checkpoint {
 public:
  static base::Result<Checkpoint> open(const std::string& path);

  const TensorInfo* find(const std::string& name) const;
  // Like find, but a missing tensor is an error naming it.
  base::Result<const TensorInfo*> get(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  uint64_t total_bytes() const;            // sum of the tensors' byte sizes
  const std::string& dir() const { return dir_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  base::Status add_file(std::unique_ptr<SafetensorsFile> file);

  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> by_name_;
};

// A tensor to write: the bytes are copied from `data` (num_bytes must match shape × dtype).
struct TensorToWrite {
  std::string name;
  tensor::DType dtype = tensor::DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  uint64_t num_bytes = 0;
};

// Writes one .safetensors file atomically (temporary name in the same folder, fsync, rename; the
// temporary is removed on failure). Layout as described at the top of this file.
base::Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

// Streams a checkpoint into shards of at most `max_shard_bytes` of tensor data each (a tensor larger
// than that gets a shard of its own), holding no tensor data in memory.
//
// Design: add() appends the tensor's bytes to an unlinked scratch file in `dir`; when the next
// tensor would overflow the shard, the shard is written to a temporary name
// (".nibble-shard-<pid>-<k>.tmp") with its tensors in the layout order above, copied from the
// scratch file with copy_file_range, and fsynced. finish() renames the shards to
// model-0000K-of-0000N.safetensors and writes model.safetensors.index.json atomically, like
// transformers' save_pretrained: a single shard is named model.safetensors and gets no index.
// The index maps every tensor to its shard, with "metadata": {"total_size": sum of tensor bytes}.
// Until finish() succeeds nothing carries a final name; destroying an unfinished writer removes its
// temporaries. `dir` must exist; use a fresh folder (old shards with other names are not removed).
class ShardedWriter {
 public:
  static constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000;

  // `metadata` goes into every shard's "__metadata__" (transformers writes {"format": "pt"}).
  static base::Result<std::unique_ptr<ShardedWriter>> create(
      const std::string& dir, uint64_t max_shard_bytes = kDefaultMaxShardBytes,
      std::map<std::string, std::string> metadata = {});
  ~ShardedWriter();
  ShardedWriter(const ShardedWriter&) = delete;
  ShardedWriter& operator=(const ShardedWriter&) = delete;

  // Copies the tensor's bytes out; `tensor.data` may be freed when this returns.
  base::Status add(const TensorToWrite& tensor);
  // Writes the last shard, renames all shards and writes the index. Call once.
  base::Status finish();

  uint64_t total_bytes() const { return total_bytes_; }
  // The final file names, valid after finish() (e.g. {"model-00001-of-00002.safetensors", ...}).
  const std::vector<std::string>& shard_names() const { return final_names_; }

 private:
  struct Pending {
    std::string name;
    tensor::DType dtype;
    std::vector<int64_t> shape;
    uint64_t scratch_offset;  // where its bytes start in the scratch file
    uint64_t num_bytes;
  };

  ShardedWriter() = default;
  base::Status flush_shard();

  std::string dir_;
  std::string token_;  // makes temporary names unique: "<pid>-<counter>"
  uint64_t max_shard_bytes_ = kDefaultMaxShardBytes;
  std::map<std::string, std::string> metadata_;
  int scratch_fd_ = -1;
  uint64_t scratch_bytes_ = 0;                           // bytes of the current shard in the scratch file
  std::vector<Pending> pending_;                         // tensors of the current shard
  std::vector<std::string> temp_paths_;                  // written shards, not yet renamed
  std::vector<std::vector<std::string>> shard_tensors_;  // tensor names per written shard
  std::set<std::string> seen_;                           // every tensor name added so far
  std::vector<std::string> final_names_;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
  bool failed_ = false;
};

}  // namespace nibble::io
