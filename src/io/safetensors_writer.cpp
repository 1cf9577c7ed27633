// safetensors writers: one file (write_safetensors) and streamed shards (ShardedWriter).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include "base/file_util.h"
#include "io/json_strict.h"
#include "io/safetensors.h"

namespace nibble::io {
namespace {

using tensor::DType;

// Position of each dtype in the Rust safetensors `Dtype` enum (its declaration order). The Rust
// writer lays tensors out by this rank descending, then by name; nibble does the same so that its
// files match safetensors.torch.save byte for byte. Indexed by tensor::DType.
constexpr std::array<int, tensor::kNumDTypes> kRustDtypeRank = {
    0,   // kBool
    4,   // kU8
    5,   // kI8
    12,  // kU16
    11,  // kI16
    16,  // kU32
    15,  // kI32
    21,  // kU64
    20,  // kI64
    13,  // kF16
    14,  // kBF16
    17,  // kF32
    19,  // kF64
    18,  // kC64
    7,   // kF8E4M3
    6,   // kF8E5M2
    9,   // kF8E4M3FNUZ
    10,  // kF8E5M2FNUZ
    8,   // kF8E8M0
    2,   // kF6E2M3
    3,   // kF6E3M2
    1,   // kF4
};

int rust_rank(DType dtype) {
  return kRustDtypeRank[static_cast<size_t>(dtype)];
}

// What the writers need to know about one tensor to lay it out.
struct LayoutItem {
  const std::string* name;
  DType dtype;
  const std::vector<int64_t>* shape;
  uint64_t num_bytes;
  size_t source;  // index into the caller's list
};

void sort_for_layout(std::vector<LayoutItem>* items) {
  std::sort(items->begin(), items->end(), [](const LayoutItem& a, const LayoutItem& b) {
    const int rank_a = rust_rank(a.dtype);
    const int rank_b = rust_rank(b.dtype);
    if (rank_a != rank_b) return rank_a > rank_b;
    return *a.name < *b.name;
  });
}

base::Result<std::string> json_string(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json(text).dump();
  } catch (const nlohmann::json::exception&) {
    return base::invalid_argument(what + " " + quote_name(text) + " is not valid UTF-8");
  }
}

// The 8-byte length plus the padded JSON header for `items` (already in layout order).
base::Result<std::string> build_header(const std::vector<LayoutItem>& items,
                                       const std::map<std::string, std::string>& metadata) {
  std::string json = "{";
  bool first = true;
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    for (const auto& [key, value] : metadata) {
      if (!first) json += ',';
      first = false;
      NIBBLE_ASSIGN_OR_RETURN(const std::string key_json, json_string(key, "metadata key"));
      NIBBLE_ASSIGN_OR_RETURN(const std::string value_json, json_string(value, "metadata value"));
      json += key_json + ':' + value_json;
    }
    json += '}';
    first = false;
  }
  uint64_t offset = 0;
  for (const LayoutItem& item : items) {
    if (!first) json += ',';
    first = false;
    NIBBLE_ASSIGN_OR_RETURN(const std::string name_json, json_string(*item.name, "tensor name"));
    json += name_json + ":{\"dtype\":\"" + std::string(tensor::dtype_name(item.dtype)) + "\",\"shape\":[";
    for (size_t i = 0; i < item.shape->size(); ++i) {
      if (i > 0) json += ',';
      json += std::to_string((*item.shape)[i]);
    }
    json += "],\"data_offsets\":[" + std::to_string(offset) + ',' + std::to_string(offset + item.num_bytes) +
            "]}";
    offset += item.num_bytes;
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t header_bytes = json.size();
  for (int i = 0; i < 8; ++i) {
    out[static_cast<size_t>(i)] = static_cast<char>(header_bytes & 0xFF);
    header_bytes >>= 8;
  }
  return out + json;
}

// Checks a tensor the caller wants written.
base::Status validate_tensor(const TensorToWrite& tensor) {
  const std::string what = "tensor " + quote_name(tensor.name);
  if (tensor.name.empty()) return base::invalid_argument("tensor name is empty");
  if (tensor.name == "__metadata__") return base::invalid_argument(what + ": reserved name");
  if (static_cast<int>(tensor.dtype) >= tensor::kNumDTypes)
    return base::invalid_argument(what + ": bad dtype");
  uint64_t num_elems = 1;
  for (const int64_t dim : tensor.shape) {
    if (dim < 0) return base::invalid_argument(what + ": negative dimension " + std::to_string(dim));
    const auto udim = static_cast<uint64_t>(dim);
    if (udim != 0 && num_elems > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / udim) {
      return base::invalid_argument(what + ": shape has too many elements");
    }
    num_elems *= udim;
  }
  const std::optional<uint64_t> expected = tensor::dtype_num_bytes(tensor.dtype, num_elems);
  if (!expected) {
    return base::invalid_argument(what + ": " + std::to_string(num_elems) + " elements of " +
                                  std::string(tensor::dtype_name(tensor.dtype)) + " are not whole bytes");
  }
  if (*expected != tensor.num_bytes) {
    return base::invalid_argument(what + ": num_bytes " + std::to_string(tensor.num_bytes) + " but shape × " +
                                  std::string(tensor::dtype_name(tensor.dtype)) + " needs " +
                                  std::to_string(*expected));
  }
  if (tensor.num_bytes > 0 && tensor.data == nullptr) return base::invalid_argument(what + ": data is null");
  return base::ok_status();
}

std::string errno_text() {
  return std::strerror(errno);
}

base::Status write_all(int fd, const void* data, uint64_t num_bytes, const std::string& path) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  while (num_bytes > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(num_bytes, 1u << 30));
    const ssize_t n = ::write(fd, bytes, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::io_error(path + ": write failed: " + errno_text());
    }
    bytes += n;
    num_bytes -= static_cast<uint64_t>(n);
  }
  return base::ok_status();
}

base::Status pwrite_all(int fd, const void* data, uint64_t num_bytes, uint64_t offset,
                        const std::string& path) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  while (num_bytes > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(num_bytes, 1u << 30));
    const ssize_t n = ::pwrite(fd, bytes, chunk, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::io_error(path + ": write failed: " + errno_text());
    }
    bytes += n;
    offset += static_cast<uint64_t>(n);
    num_bytes -= static_cast<uint64_t>(n);
  }
  return base::ok_status();
}

// Appends `num_bytes` from `in_fd` at `offset` to `out_fd`'s current position: copy_file_range
// (in-kernel, possibly a reflink), falling back to read/write where the file system refuses.
base::Status copy_range(int in_fd, uint64_t offset, uint64_t num_bytes, int out_fd,
                        const std::string& out_path) {
  auto in_offset = static_cast<off_t>(offset);
  bool use_kernel_copy = true;
  std::vector<uint8_t> buffer;
  while (num_bytes > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(num_bytes, 1u << 30));
    if (use_kernel_copy) {
      const ssize_t n = ::copy_file_range(in_fd, &in_offset, out_fd, nullptr, chunk, 0);
      if (n > 0) {
        num_bytes -= static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) return base::io_error(out_path + ": scratch file ended early while copying a tensor");
      if (errno != ENOSYS && errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP && errno != EPERM) {
        return base::io_error(out_path + ": copy_file_range failed: " + errno_text());
      }
      use_kernel_copy = false;
      buffer.resize(8u << 20);
    }
    const size_t part = std::min<size_t>(chunk, buffer.size());
    const ssize_t n = ::pread(in_fd, buffer.data(), part, in_offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return base::io_error(out_path + ": reading the scratch file failed: " + errno_text());
    NIBBLE_TRY(write_all(out_fd, buffer.data(), static_cast<uint64_t>(n), out_path));
    in_offset += n;
    num_bytes -= static_cast<uint64_t>(n);
  }
  return base::ok_status();
}

// Best effort: makes a rename in `dir` durable.
void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// A file being written under a temporary name: closed and removed unless commit() renamed it.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && created_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  base::Status create() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) return base::io_error(path_ + ": cannot create: " + errno_text());
    created_ = true;
    return base::ok_status();
  }
  // fsync and close; the file keeps its temporary name.
  base::Status close_synced() {
    const bool synced = ::fsync(fd_) == 0;
    const int err = errno;
    const bool closed = ::close(fd_) == 0;
    fd_ = -1;
    if (!synced || !closed)
      return base::io_error(path_ + ": fsync/close failed: " + std::strerror(synced ? errno : err));
    return base::ok_status();
  }
  // Leaves the file in place for the caller, who now owns it.
  void release() { committed_ = true; }
  base::Status rename_to(const std::string& final_path) {
    if (::rename(path_.c_str(), final_path.c_str()) != 0) {
      return base::io_error(final_path + ": rename from " + path_ + " failed: " + errno_text());
    }
    committed_ = true;
    return base::ok_status();
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool created_ = false;
  bool committed_ = false;
};

std::atomic<uint64_t> g_temp_counter{0};

std::string temp_token() {
  return std::to_string(::getpid()) + "-" + std::to_string(g_temp_counter.fetch_add(1));
}

}  // namespace

base::Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  std::vector<LayoutItem> items;
  items.reserve(tensors.size());
  std::set<std::string_view> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorToWrite& tensor = tensors[i];
    NIBBLE_TRY(validate_tensor(tensor).with_context(path));
    if (!names.insert(tensor.name).second) {
      return base::invalid_argument(path + ": tensor " + quote_name(tensor.name) + " given twice");
    }
    items.push_back({&tensor.name, tensor.dtype, &tensor.shape, tensor.num_bytes, i});
  }
  sort_for_layout(&items);
  auto header = build_header(items, metadata);
  if (!header.ok()) return header.status().with_context(path);

  TempFile temp(path + ".tmp." + temp_token());
  NIBBLE_TRY(temp.create());
  NIBBLE_TRY(write_all(temp.fd(), header->data(), header->size(), temp.path()));
  for (const LayoutItem& item : items) {
    NIBBLE_TRY(write_all(temp.fd(), tensors[item.source].data, item.num_bytes, temp.path()));
  }
  NIBBLE_TRY(temp.close_synced());
  NIBBLE_TRY(temp.rename_to(path));
  sync_dir(dir_of(path));
  return base::ok_status();
}

base::Result<std::unique_ptr<ShardedWriter>> ShardedWriter::create(
    const std::string& dir, uint64_t max_shard_bytes, std::map<std::string, std::string> metadata) {
  if (!base::is_directory(dir)) return base::not_found(dir + ": output folder does not exist");
  if (max_shard_bytes == 0) return base::invalid_argument(dir + ": max shard size must be positive");
  auto writer = std::unique_ptr<ShardedWriter>(new ShardedWriter());
  writer->dir_ = dir;
  writer->max_shard_bytes_ = max_shard_bytes;
  writer->metadata_ = std::move(metadata);
  writer->token_ = temp_token();
  // The scratch file is unlinked at once: it lives only as long as the descriptor.
  const std::string scratch = base::join_path(dir, ".nibble-scratch-" + writer->token_ + ".tmp");
  writer->scratch_fd_ = ::open(scratch.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (writer->scratch_fd_ < 0) return base::io_error(scratch + ": cannot create: " + errno_text());
  ::unlink(scratch.c_str());
  return writer;
}

ShardedWriter::~ShardedWriter() {
  if (scratch_fd_ >= 0) ::close(scratch_fd_);
  for (const std::string& path : temp_paths_) ::unlink(path.c_str());
}

base::Status ShardedWriter::add(const TensorToWrite& tensor) {
  if (finished_) return base::invalid_argument(dir_ + ": add() after finish()");
  if (failed_) return base::invalid_argument(dir_ + ": add() after an earlier write failed");
  NIBBLE_TRY(validate_tensor(tensor).with_context(dir_));
  if (seen_.count(tensor.name) != 0) {
    return base::invalid_argument(dir_ + ": tensor " + quote_name(tensor.name) + " added twice");
  }
  if (!pending_.empty() && scratch_bytes_ + tensor.num_bytes > max_shard_bytes_) {
    const base::Status status = flush_shard();
    if (!status.ok()) {
      failed_ = true;
      return status;
    }
  }
  const base::Status status =
      pwrite_all(scratch_fd_, tensor.data, tensor.num_bytes, scratch_bytes_, dir_ + " (scratch file)");
  if (!status.ok()) {
    failed_ = true;
    return status;
  }
  seen_.insert(tensor.name);
  pending_.push_back({tensor.name, tensor.dtype, tensor.shape, scratch_bytes_, tensor.num_bytes});
  scratch_bytes_ += tensor.num_bytes;
  total_bytes_ += tensor.num_bytes;
  return base::ok_status();
}

base::Status ShardedWriter::flush_shard() {
  std::vector<LayoutItem> items;
  items.reserve(pending_.size());
  for (size_t i = 0; i < pending_.size(); ++i) {
    const Pending& p = pending_[i];
    items.push_back({&p.name, p.dtype, &p.shape, p.num_bytes, i});
  }
  sort_for_layout(&items);
  NIBBLE_ASSIGN_OR_RETURN(const std::string header, build_header(items, metadata_));

  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), "-%05zu.tmp", temp_paths_.size() + 1);
  TempFile temp(base::join_path(dir_, ".nibble-shard-" + token_ + suffix));
  NIBBLE_TRY(temp.create());
  NIBBLE_TRY(write_all(temp.fd(), header.data(), header.size(), temp.path()));
  for (const LayoutItem& item : items) {
    NIBBLE_TRY(copy_range(scratch_fd_, pending_[item.source].scratch_offset, item.num_bytes, temp.fd(),
                          temp.path()));
  }
  NIBBLE_TRY(temp.close_synced());
  temp.release();
  temp_paths_.push_back(temp.path());

  std::vector<std::string> names;
  names.reserve(pending_.size());
  for (Pending& p : pending_) names.push_back(std::move(p.name));
  shard_tensors_.push_back(std::move(names));
  pending_.clear();
  scratch_bytes_ = 0;
  if (::ftruncate(scratch_fd_, 0) != 0)
    return base::io_error(dir_ + ": cannot truncate the scratch file: " + errno_text());
  return base::ok_status();
}

base::Status ShardedWriter::finish() {
  if (finished_) return base::invalid_argument(dir_ + ": finish() called twice");
  if (failed_) return base::invalid_argument(dir_ + ": finish() after an earlier write failed");
  failed_ = true;  // until proven otherwise
  if (!pending_.empty() || temp_paths_.empty()) NIBBLE_TRY(flush_shard());
  ::close(scratch_fd_);
  scratch_fd_ = -1;

  const size_t num_shards = temp_paths_.size();
  std::vector<std::string> names;
  for (size_t k = 0; k < num_shards; ++k) {
    if (num_shards == 1) {
      names.emplace_back("model.safetensors");
    } else {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", k + 1, num_shards);
      names.emplace_back(name);
    }
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t k = 0; k < num_shards; ++k) {
    for (const std::string& tensor_name : shard_tensors_[k]) weight_map[tensor_name] = names[k];
  }
  // Rename from the last shard down, so temp_paths_ keeps only what is still temporary.
  for (size_t k = num_shards; k-- > 0;) {
    const std::string final_path = base::join_path(dir_, names[k]);
    if (::rename(temp_paths_[k].c_str(), final_path.c_str()) != 0) {
      return base::io_error(final_path + ": rename from " + temp_paths_[k] + " failed: " + errno_text());
    }
    temp_paths_.pop_back();
  }
  if (num_shards > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total_bytes_}}},
                            {"weight_map", std::move(weight_map)}};
    NIBBLE_TRY(
        base::write_file_atomic(base::join_path(dir_, "model.safetensors.index.json"), index.dump(2) + "\n"));
  }
  sync_dir(dir_);
  final_names_ = std::move(names);
  finished_ = true;
  failed_ = false;
  return base::ok_status();
}

}  // namespace nibble::io
