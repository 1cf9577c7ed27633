# Shared build helpers for every layer.

set(NIBBLE_WARNINGS -Wall -Wextra -Wpedantic -Wshadow)
if(NIBBLE_WERROR)
  list(APPEND NIBBLE_WARNINGS -Werror)
endif()

if(NIBBLE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(NIBBLE_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# nibble_add_library(NAME SOURCES ... DEPS ...): one layer as a static library `nibble_<NAME>`.
function(nibble_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(nibble_${name} STATIC ${ARG_SOURCES})
  target_include_directories(nibble_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(nibble_${name} PRIVATE ${NIBBLE_WARNINGS})
  target_link_libraries(nibble_${name} PUBLIC ${ARG_DEPS})
endfunction()

# nibble_add_test(NAME SOURCES ... DEPS ... [LABELS ...] [ENVIRONMENT VAR=VALUE ...]): a GoogleTest
# binary registered with ctest. Tests get NIBBLE_SHARED_DIR and NIBBLE_SOURCE_DIR as compile
# definitions for their data. Tests against fp32 reference goldens pass ENVIRONMENT NIBBLE_EXACT=1
# (kernels that keep activations in fp32; see kernels/kernel_table.h).
function(nibble_add_test name)
  if(NOT NIBBLE_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS;ENVIRONMENT" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${NIBBLE_WARNINGS})
  target_compile_definitions(${name} PRIVATE NIBBLE_SHARED_DIR="${NIBBLE_SHARED_DIR}"
                                             NIBBLE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}" ENVIRONMENT
                       "${ARG_ENVIRONMENT}")
endfunction()

# nibble_add_fuzzer(NAME SOURCES ... DEPS ...): a libFuzzer target (fuzz preset only).
function(nibble_add_fuzzer name)
  if(NOT NIBBLE_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()
