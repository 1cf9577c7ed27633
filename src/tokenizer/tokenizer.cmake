# tokenizer.json loading, BPE encode/decode, incremental detokenization.
nibble_add_library(tokenizer
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/unicode.cpp
    ${CMAKE_CURRENT_LIST_DIR}/regex.cpp
    ${CMAKE_CURRENT_LIST_DIR}/json_util.cpp
    ${CMAKE_CURRENT_LIST_DIR}/normalizer.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pre_tokenizer.cpp
    ${CMAKE_CURRENT_LIST_DIR}/bpe.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decoder.cpp
    ${CMAKE_CURRENT_LIST_DIR}/added_tokens.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cpp
    ${CMAKE_CURRENT_LIST_DIR}/incremental_detokenizer.cpp
  DEPS nibble_base nlohmann_json::nlohmann_json PkgConfig::PCRE2 PkgConfig::UTF8PROC)

nibble_add_test(tokenizer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cpp
  DEPS nibble_tokenizer
  LABELS unit)

# Encode throughput on a corpus file (a benchmark, never run by ctest):
#   build/release/src/tokenizer/tokenizer_bench ../shared/tokenizers/qwen3 corpus.txt
add_executable(tokenizer_bench ${CMAKE_CURRENT_LIST_DIR}/tokenizer_bench.cpp)
target_compile_options(tokenizer_bench PRIVATE ${NIBBLE_WARNINGS})
target_link_libraries(tokenizer_bench PRIVATE nibble_tokenizer)
