// safetensors reader: header validation for one file (see the rules in safetensors.h).
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>

#include "io/json_strict.h"

namespace nibble::io {
namespace {

using nlohmann::json;
using tensor::DType;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the Rust reader's limit

uint64_t read_le64(const uint8_t* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

std::string json_type(const json& value) {
  return value.type_name();
}

// Reads a JSON value that must be a non-negative integer (not a float, not negative).
bool as_unsigned(const json& value, uint64_t* out) {
  if (!value.is_number_unsigned()) return false;
  *out = value.get<uint64_t>();
  return true;
}

struct Entry {
  TensorInfo info;
  uint64_t begin = 0;
  uint64_t end = 0;
};

// Validates one tensor entry against the data area of `data_num_bytes` bytes.
base::Status parse_entry(const std::string& where, const json& value, uint64_t data_num_bytes, Entry* entry) {
  if (!value.is_object())
    return base::corrupt(where + ": entry is a JSON " + json_type(value) + ", not an object");

  const auto dtype_it = value.find("dtype");
  if (dtype_it == value.end()) return base::corrupt(where + ": missing \"dtype\"");
  if (!dtype_it->is_string())
    return base::corrupt(where + ": \"dtype\" is a " + json_type(*dtype_it) + ", not a string");
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  const std::optional<DType> dtype = tensor::parse_dtype(dtype_name);
  if (!dtype) return base::corrupt(where + ": unknown dtype " + quote_name(dtype_name));
  entry->info.dtype = *dtype;

  const auto shape_it = value.find("shape");
  if (shape_it == value.end()) return base::corrupt(where + ": missing \"shape\"");
  if (!shape_it->is_array())
    return base::corrupt(where + ": \"shape\" is a " + json_type(*shape_it) + ", not an array");
  uint64_t num_elems = 1;
  for (size_t i = 0; i < shape_it->size(); ++i) {
    uint64_t dim = 0;
    const json& dim_json = (*shape_it)[i];
    if (!as_unsigned(dim_json, &dim) || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return base::corrupt(where + ": shape[" + std::to_string(i) + "] = " + dim_json.dump() +
                           " is not a non-negative integer");
    }
    if (dim != 0 && num_elems > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim) {
      return base::corrupt(where + ": shape " + shape_it->dump() + " has too many elements (overflow)");
    }
    num_elems *= dim;
    entry->info.shape.push_back(static_cast<int64_t>(dim));
  }

  const auto offsets_it = value.find("data_offsets");
  if (offsets_it == value.end()) return base::corrupt(where + ": missing \"data_offsets\"");
  if (!offsets_it->is_array() || offsets_it->size() != 2 || !as_unsigned((*offsets_it)[0], &entry->begin) ||
      !as_unsigned((*offsets_it)[1], &entry->end)) {
    return base::corrupt(where + ": \"data_offsets\" = " + offsets_it->dump() +
                         " is not [begin, end] with non-negative integers");
  }
  if (entry->begin > entry->end) {
    return base::corrupt(where + ": data_offsets [" + std::to_string(entry->begin) + ", " +
                         std::to_string(entry->end) + "] have begin > end");
  }
  if (entry->end > data_num_bytes) {
    return base::corrupt(where + ": data_offsets [" + std::to_string(entry->begin) + ", " +
                         std::to_string(entry->end) + "] extend past the data area of " +
                         std::to_string(data_num_bytes) + " bytes");
  }
  const std::optional<uint64_t> expected = tensor::dtype_num_bytes(*dtype, num_elems);
  if (!expected) {
    return base::corrupt(where + ": " + std::to_string(num_elems) + " elements of " + dtype_name +
                         " do not fill a whole number of bytes");
  }
  entry->info.num_bytes = entry->end - entry->begin;
  if (entry->info.num_bytes != *expected) {
    return base::corrupt(where + ": data_offsets [" + std::to_string(entry->begin) + ", " +
                         std::to_string(entry->end) + "] hold " + std::to_string(entry->info.num_bytes) +
                         " bytes but shape " + shape_it->dump() + " of " + dtype_name + " needs " +
                         std::to_string(*expected));
  }
  return base::ok_status();
}

base::Status parse_metadata(const std::string& where, const json& value,
                            std::map<std::string, std::string>* metadata) {
  if (!value.is_object()) return base::corrupt(where + " is a JSON " + json_type(value) + ", not an object");
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return base::corrupt(where + ": value of " + quote_name(key) + " is a " + json_type(item) +
                           ", not a string");
    }
    (*metadata)[key] = item.get<std::string>();
  }
  return base::ok_status();
}

}  // namespace

int64_t TensorInfo::num_elems() const {
  int64_t n = 1;
  for (const int64_t dim : shape) n *= dim;
  return n;
}

base::Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  NIBBLE_ASSIGN_OR_RETURN(base::MappedFile mapped, base::MappedFile::open(path));
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  file->file_ = std::move(mapped);
  NIBBLE_TRY(file->parse_image(file->file_.data(), file->file_.num_bytes()));
  return file;
}

base::Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::parse(const uint8_t* bytes,
                                                                      uint64_t num_bytes,
                                                                      const std::string& path) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  NIBBLE_TRY(file->parse_image(bytes, num_bytes));
  return file;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

base::Status SafetensorsFile::parse_image(const uint8_t* bytes, uint64_t num_bytes) {
  if (num_bytes < 8) {
    return base::corrupt(path_ + ": file is " + std::to_string(num_bytes) +
                         " bytes, shorter than the 8-byte header length");
  }
  const uint64_t header_bytes = read_le64(bytes);
  if (header_bytes > kMaxHeaderBytes) {
    return base::corrupt(path_ + ": header length " + std::to_string(header_bytes) +
                         " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (header_bytes > num_bytes - 8) {
    return base::corrupt(path_ + ": header length " + std::to_string(header_bytes) + " exceeds the " +
                         std::to_string(num_bytes - 8) + " bytes after the length field (truncated file?)");
  }
  if (header_bytes == 0 || bytes[8] != '{') {
    return base::corrupt(path_ + ": header does not start with '{'");
  }
  header_num_bytes_ = header_bytes;
  const uint8_t* data_start = bytes + 8 + header_bytes;
  const uint64_t data_num_bytes = num_bytes - 8 - header_bytes;

  const std::string_view text(reinterpret_cast<const char*>(bytes + 8), header_bytes);
  NIBBLE_ASSIGN_OR_RETURN(json header, parse_json_strict(text, path_ + ": header"));
  if (!header.is_object())
    return base::corrupt(path_ + ": header is a JSON " + json_type(header) + ", not an object");

  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      NIBBLE_TRY(parse_metadata(path_ + ": header field \"__metadata__\"", value, &metadata_));
      continue;
    }
    Entry entry;
    NIBBLE_TRY(parse_entry(path_ + ": tensor " + quote_name(name), value, data_num_bytes, &entry));
    entry.info.name = name;
    entry.info.data = data_start + entry.begin;
    entry.info.file = &path_;
    entries.push_back(std::move(entry));
  }

  // Overlap check in offset order; zero-byte tensors occupy nothing.
  std::vector<const Entry*> by_offset;
  by_offset.reserve(entries.size());
  for (const Entry& entry : entries) {
    if (entry.begin != entry.end) by_offset.push_back(&entry);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Entry& prev = *by_offset[i - 1];
    const Entry& cur = *by_offset[i];
    if (cur.begin < prev.end) {
      return base::corrupt(path_ + ": tensor " + quote_name(cur.info.name) + " at [" +
                           std::to_string(cur.begin) + ", " + std::to_string(cur.end) + ") overlaps tensor " +
                           quote_name(prev.info.name) + " at [" + std::to_string(prev.begin) + ", " +
                           std::to_string(prev.end) + ")");
    }
  }

  // nlohmann's object is a std::map, so items() already come sorted by name.
  tensors_.reserve(entries.size());
  for (Entry& entry : entries) {
    index_.emplace(entry.info.name, tensors_.size());
    tensors_.push_back(std::move(entry.info));
  }
  return base::ok_status();
}

}  // namespace nibble::io
