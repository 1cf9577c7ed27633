// Helpers shared by the model tests in tests/: temp folders and running the nibble binary.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace nibble::testing_util {

// A fresh empty folder under the system temp dir, removed at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("nibble_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout (and stderr when merged)
};

// Runs a shell command line, collecting its stdout and exit code.
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs the nibble binary with `args`; `merge_stderr` folds stderr into output, else it is dropped.
inline CommandResult run_nibble(const std::vector<std::string>& args, bool merge_stderr) {
  std::string cmd = shell_quote(NIBBLE_BINARY);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += merge_stderr ? " 2>&1" : " 2>/dev/null";
  return run_command(cmd);
}

}  // namespace nibble::testing_util
