// Encode throughput of nibble's tokenizer on a corpus file, single thread.
//
//   tokenizer_bench TOKENIZER_DIR CORPUS_FILE [REPEATS]
//
// Prints MB/s for encoding the whole file in one call and for encoding it line by line (the
// best of REPEATS runs each). tests/conformance/bench_hf_tokenizer.py measures HF tokenizers the
// same way on the same file.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/file_util.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR CORPUS_FILE [REPEATS]\n", argv[0]);
    return 2;
  }
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  auto tok = nibble::tokenizer::Tokenizer::from_dir(argv[1]);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().message().c_str());
    return 2;
  }
  auto corpus = nibble::base::read_file(argv[2]);
  if (!corpus.ok()) {
    std::fprintf(stderr, "%s\n", corpus.status().message().c_str());
    return 2;
  }
  const std::string& text = *corpus;
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    lines.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  const double mb = static_cast<double>(text.size()) / 1e6;
  using Clock = std::chrono::steady_clock;
  double best_whole = 1e30, best_lines = 1e30;
  size_t num_tokens = 0;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    auto ids = (*tok)->encode(text, false);
    auto t1 = Clock::now();
    if (!ids.ok()) {
      std::fprintf(stderr, "%s\n", ids.status().message().c_str());
      return 2;
    }
    num_tokens = ids->size();
    best_whole = std::min(best_whole, std::chrono::duration<double>(t1 - t0).count());
    t0 = Clock::now();
    for (const std::string& line : lines) {
      auto line_ids = (*tok)->encode(line, false);
      if (!line_ids.ok()) return 2;
    }
    t1 = Clock::now();
    best_lines = std::min(best_lines, std::chrono::duration<double>(t1 - t0).count());
  }
  std::printf("nibble %s: %.2f MB, %zu tokens; whole text %.2f MB/s; per line (%zu lines) %.2f MB/s\n",
              argv[1], mb, num_tokens, mb / best_whole, lines.size(), mb / best_lines);
  return 0;
}
