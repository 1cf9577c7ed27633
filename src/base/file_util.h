// Small file helpers: read a whole file, write a file atomically (temp name, fsync, rename).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace nibble::base {

Result<std::string> read_file(const std::string& path);

// Writes `contents` to `path` through `path.tmp.<pid>`, fsyncs, renames. Never leaves a partial file.
Status write_file_atomic(const std::string& path, std::string_view contents);

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

// "dir" + "/" + "name", without doubling the slash.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace nibble::base
