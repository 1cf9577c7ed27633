// Checkpoint: one file, a folder with model.safetensors, or a folder with an index and shards.

#include "base/file_util.h"
#include "io/json_strict.h"
#include "io/safetensors.h"

namespace nibble::io {
namespace {

constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A shard name from an index must stay inside the checkpoint folder.
bool is_safe_relative_path(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t slash = name.find('/', start);
    const std::string part =
        name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == ".." || part.empty()) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return name.find('\0') == std::string::npos;
}

}  // namespace

base::Status Checkpoint::add_file(std::unique_ptr<SafetensorsFile> file) {
  for (const TensorInfo& info : file->tensors()) {
    const auto [it, inserted] = by_name_.emplace(info.name, &info);
    if (!inserted) {
      return base::corrupt(file->path() + ": tensor " + quote_name(info.name) + " is also in " +
                           *it->second->file);
    }
  }
  files_.push_back(std::move(file));
  return base::ok_status();
}

base::Result<Checkpoint> Checkpoint::open(const std::string& path) {
  std::string single_path;
  std::string index_path;
  Checkpoint checkpoint;
  if (base::is_directory(path)) {
    checkpoint.dir_ = path;
    if (base::file_exists(base::join_path(path, kSingleName))) {
      single_path = base::join_path(path, kSingleName);
    } else if (base::file_exists(base::join_path(path, kIndexName))) {
      index_path = base::join_path(path, kIndexName);
    } else {
      return base::not_found(path + ": no " + kSingleName + " or " + kIndexName + " in this folder");
    }
  } else if (base::file_exists(path)) {
    checkpoint.dir_ = parent_dir(path);
    if (ends_with(path, ".json")) {
      index_path = path;
    } else {
      single_path = path;
    }
  } else {
    return base::not_found(path + ": no such file or folder");
  }

  if (!single_path.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(single_path));
    NIBBLE_TRY(checkpoint.add_file(std::move(file)));
    return checkpoint;
  }

  NIBBLE_ASSIGN_OR_RETURN(const std::string text, base::read_file(index_path));
  NIBBLE_ASSIGN_OR_RETURN(const nlohmann::json index, parse_json_strict(text, index_path));
  if (!index.is_object()) return base::corrupt(index_path + ": not a JSON object");
  const auto map_it = index.find("weight_map");
  if (map_it == index.end()) return base::corrupt(index_path + ": missing \"weight_map\"");
  if (!map_it->is_object()) return base::corrupt(index_path + ": \"weight_map\" is not an object");
  if (map_it->empty()) return base::corrupt(index_path + ": \"weight_map\" is empty");

  // shard name -> the tensors the index puts there
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto& [name, shard] : map_it->items()) {
    if (!shard.is_string()) {
      return base::corrupt(index_path + ": weight_map entry for tensor " + quote_name(name) +
                           " is not a string");
    }
    const std::string& shard_name = shard.get_ref<const std::string&>();
    if (!is_safe_relative_path(shard_name)) {
      return base::corrupt(index_path + ": weight_map entry for tensor " + quote_name(name) +
                           " names shard " + quote_name(shard_name) +
                           ", which is not a relative path inside the folder");
    }
    shards[shard_name].push_back(name);
  }
  for (const auto& [shard_name, tensor_names] : shards) {
    const std::string shard_path = base::join_path(checkpoint.dir_, shard_name);
    auto file = SafetensorsFile::open(shard_path);
    if (!file.ok()) {
      const std::string context = index_path + ": shard " + quote_name(shard_name) + " (holding tensor " +
                                  quote_name(tensor_names.front()) + ")";
      return file.status().with_context(context);
    }
    for (const std::string& name : tensor_names) {
      if ((*file)->find(name) == nullptr) {
        return base::corrupt(index_path + ": tensor " + quote_name(name) + " is listed in shard " +
                             quote_name(shard_name) + " but " + shard_path + " does not hold it");
      }
    }
    NIBBLE_TRY(checkpoint.add_file(std::move(file).value()));
  }
  return checkpoint;
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

base::Result<const TensorInfo*> Checkpoint::get(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) return base::not_found(dir_ + ": checkpoint has no tensor " + quote_name(name));
  return info;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [name, info] : by_name_) out.push_back(name);
  return out;
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t total = 0;
  for (const auto& [name, info] : by_name_) total += info->num_bytes;
  return total;
}

}  // namespace nibble::io
