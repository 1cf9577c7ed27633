// Chat templates rendered byte-identical to transformers / jinja2 (goldens written by
// tests/conformance/gen_chat_template_goldens.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "base/file_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/template.h"

namespace nibble::tokenizer {
namespace {

using Json = nlohmann::ordered_json;

const std::string kGoldenDir = std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/chat_templates";

Json load_cases(const std::string& name) {
  auto text = base::read_file(kGoldenDir + "/" + name);
  EXPECT_TRUE(text.ok()) << text.status().message();
  if (!text.ok()) return Json::array();
  return Json::parse(*text);
}

// Shows where two renderings first differ.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  const size_t from = i > 40 ? i - 40 : 0;
  return "first difference at byte " + std::to_string(i) + "\n  want: ..." +
         Json(want.substr(from, 100)).dump() + "\n  got:  ..." + Json(got.substr(from, 100)).dump();
}

TEST(ChatTemplateGolden, RealModelTemplates) {
  // Qwen3 and DeepSeek-V3 come from ../shared/tokenizers; the harmony-style template lives in
  // the golden folder and runs without shared/.
  const std::string shared = std::string(NIBBLE_SHARED_DIR) + "/tokenizers";
  const bool have_shared = base::is_directory(shared);
  const Json cases = load_cases("model_cases.json");
  ASSERT_GT(cases.size(), 10u);
  int checked = 0;
  int skipped = 0;
  for (const Json& c : cases) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const std::string model = c["model"];
    const bool in_golden = model.rfind("golden:", 0) == 0;
    if (!in_golden && !have_shared) {
      ++skipped;
      continue;
    }
    const std::string dir = in_golden ? kGoldenDir + "/" + model.substr(7) : shared + "/" + model;
    auto tmpl = ChatTemplate::from_dir(dir);
    ASSERT_TRUE(tmpl.ok()) << tmpl.status().message();
    jinja::RenderLimits limits;
    limits.now = c["now"].get<int64_t>();
    auto out = tmpl->render_json(c["messages"], c["tools"], c["add_generation_prompt"].get<bool>(),
                                 c["kwargs"], limits);
    if (c.contains("error")) {
      EXPECT_FALSE(out.ok()) << "transformers failed with " << c["error"] << " but we rendered:\n" << *out;
    } else {
      ASSERT_TRUE(out.ok()) << out.status().message();
      const std::string want = c["expected"];
      EXPECT_EQ(*out, want) << first_difference(want, *out);
    }
    ++checked;
  }
  EXPECT_EQ(checked + skipped, static_cast<int>(cases.size()));
  if (skipped > 0) GTEST_SKIP() << skipped << " cases need the shared tokenizers, not found at " << shared;
}

TEST(ChatTemplateGolden, FeatureTemplates) {
  const Json cases = load_cases("feature_cases.json");
  ASSERT_GT(cases.size(), 50u);
  for (const Json& c : cases) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    jinja::Value vars;
    std::string error;
    ASSERT_TRUE(jinja::value_from_json(c["vars"], vars, error)) << error;
    jinja::RenderLimits limits;
    limits.now = c["now"].get<int64_t>();
    auto tmpl = jinja::Template::parse(c["template"].get<std::string>());
    base::Result<std::string> out = tmpl.ok() ? tmpl->render(vars.as_dict(), limits) : tmpl.status();
    if (c.contains("error")) {
      EXPECT_FALSE(out.ok()) << "jinja2 failed with " << c["error"] << " but we rendered:\n" << *out;
    } else {
      ASSERT_TRUE(out.ok()) << out.status().message();
      const std::string want = c["expected"];
      EXPECT_EQ(*out, want) << first_difference(want, *out);
    }
  }
}

TEST(ChatTemplateGolden, JinjaFileWinsOverConfigString) {
  auto tmpl = ChatTemplate::from_dir(kGoldenDir + "/harmony");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().message();
  EXPECT_NE(tmpl->source().find("harmony-style"), std::string::npos);
  bool has_eos = false;
  for (const auto& [k, v] : tmpl->special_tokens())
    has_eos = has_eos || (k == "eos_token" && v == "<|return|>");
  EXPECT_TRUE(has_eos) << "eos_token given as an AddedToken dict";
}

TEST(ChatTemplateGolden, NamedTemplatesPickToolUse) {
  const std::string dir = ::testing::TempDir() + "/nibble_named_templates";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(base::write_file_atomic(dir + "/tokenizer_config.json",
                                      R"({"bos_token": "<s>", "chat_template": [
                                          {"name": "default", "template": "D{{ bos_token }}"},
                                          {"name": "tool_use", "template": "T{{ tools|length }}"}]})")
                  .ok());
  auto tmpl = ChatTemplate::from_dir(dir);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().message();
  auto plain = tmpl->render(R"([{"role": "user", "content": "x"}])", "", false, "");
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ(*plain, "D<s>");
  auto tools = tmpl->render(R"([{"role": "user", "content": "x"}])", R"([{"name": "f"}])", false, "");
  ASSERT_TRUE(tools.ok()) << tools.status().message();
  EXPECT_EQ(*tools, "T1");

  // Template files replace the config's templates: chat_template.jinja is "default" and
  // additional_chat_templates/<name>.jinja are named ones.
  std::filesystem::create_directories(dir + "/additional_chat_templates");
  ASSERT_TRUE(base::write_file_atomic(dir + "/chat_template.jinja", "F{{ bos_token }}").ok());
  ASSERT_TRUE(base::write_file_atomic(dir + "/additional_chat_templates/tool_use.jinja", "FT").ok());
  auto files = ChatTemplate::from_dir(dir);
  ASSERT_TRUE(files.ok()) << files.status().message();
  auto default_out = files->render(R"([{"role": "user", "content": "x"}])", "", false, "");
  ASSERT_TRUE(default_out.ok()) << default_out.status().message();
  EXPECT_EQ(*default_out, "F<s>");
  auto tool_out = files->render(R"([{"role": "user", "content": "x"}])", "[]", false, "");
  ASSERT_TRUE(tool_out.ok()) << tool_out.status().message();
  EXPECT_EQ(*tool_out, "FT");
  std::filesystem::remove_all(dir);
}

TEST(ChatTemplateGolden, BadInputsAreErrors) {
  auto tmpl = ChatTemplate::from_string("{{ messages[0].content }}");
  ASSERT_TRUE(tmpl.ok());
  EXPECT_FALSE(tmpl->render("[]", "", false, "").ok());
  EXPECT_FALSE(tmpl->render("{not json", "", false, "").ok());
  EXPECT_FALSE(tmpl->render("[1]", "", false, "").ok());
  EXPECT_FALSE(tmpl->render(R"([{"role":"user","content":"x"}])", "{}", false, "").ok());
  EXPECT_FALSE(tmpl->render(R"([{"role":"user","content":"x"}])", "", false, "[1]").ok());
  auto ok = tmpl->render(R"([{"role":"user","content":"x"}])", "", false, R"({"k": 1})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "x");
}

}  // namespace
}  // namespace nibble::tokenizer
