# Chat templates: a Jinja engine (jinja/) and the model-folder loader (chat_template.cpp).
nibble_add_library(chat_template
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/jinja/utf8.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/value.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/lexer.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/parser.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/parser_expr.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/interpreter.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/eval.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/filters.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/builtin_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/methods.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/globals.cpp
    ${CMAKE_CURRENT_LIST_DIR}/jinja/template.cpp
    ${CMAKE_CURRENT_LIST_DIR}/chat_template.cpp
  DEPS nibble_base nlohmann_json::nlohmann_json PkgConfig::UTF8PROC)

nibble_add_test(chat_template_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/jinja/jinja_test.cpp
  DEPS nibble_chat_template
  LABELS unit)
