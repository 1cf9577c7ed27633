// safetensors reading (mmap, single file or sharded with model.safetensors.index.json) and writing.
//
// Format (see ../shared/docs/formats.md §6): 8-byte little-endian header length N, N bytes of JSON
// header, then the data buffer. Every tensor's data_offsets are relative to the buffer start.
// Reading validates everything and every error names the file and the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
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
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in header order sorted by name
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;

 private:
  std::string path_;
  base::MappedFile file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint folder: model.safetensors, or model.safetensors.index.json + shards, or a single
// .safetensors file path.
class Checkpoint {
 public:
  static base::Result<Checkpoint> open(const std::string& path);

  const TensorInfo* find(const std::string& name) const;
  // Like find, but a missing tensor is an error naming it.
  base::Result<const TensorInfo*> get(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  uint64_t total_bytes() const;
  const std::string& dir() const { return dir_; }

 private:
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

// Writes one .safetensors file atomically (temporary name, fsync, rename). Header padded to 8 bytes.
base::Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace nibble::io
