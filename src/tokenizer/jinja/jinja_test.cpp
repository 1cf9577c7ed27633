// Unit tests of the Jinja engine's limits and error reporting (behaviour is compared with
// jinja2 through the goldens in tests/golden/chat_templates).
#include <gtest/gtest.h>

#include "tokenizer/jinja/template.h"

namespace nibble::tokenizer::jinja {
namespace {

base::Result<std::string> render(const std::string& src, const RenderLimits& limits = {}) {
  auto t = Template::parse(src);
  if (!t.ok()) return t.status();
  return t->render(Dict{}, limits);
}

TEST(Jinja, RendersBasics) {
  auto r = render("{% for x in [1, 2, 3] %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "1,2,3");
}

TEST(Jinja, SyntaxErrorHasLineAndColumn) {
  auto r = render("line one\n{{ 1 + }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 2, column 8"), std::string::npos) << r.status().message();
}

TEST(Jinja, RuntimeErrorHasLine) {
  auto r = render("a\nb\n{{ foo.bar }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 3"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("'foo' is undefined"), std::string::npos) << r.status().message();
}

TEST(Jinja, RaiseExceptionMessage) {
  auto r = render("{{ raise_exception('bad role') }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bad role"), std::string::npos);
}

TEST(Jinja, UnboundedRecursionIsStopped) {
  auto r = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("recursion"), std::string::npos) << r.status().message();
}

TEST(Jinja, UnboundedRecursiveLoopIsStopped) {
  auto r = render("{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("recursion"), std::string::npos) << r.status().message();
}

TEST(Jinja, HugeLoopIsStopped) {
  RenderLimits limits;
  limits.max_loop_iterations = 1000;
  auto r = render("{% for i in range(10) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("loop iterations"), std::string::npos) << r.status().message();
}

TEST(Jinja, OutputSizeIsBounded) {
  RenderLimits limits;
  limits.max_output_bytes = 1000;
  auto r = render("{{ 'x' * 100000 }}", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("limit"), std::string::npos) << r.status().message();
}

TEST(Jinja, DeepNestingIsASyntaxError) {
  const std::string src = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  auto r = render(src);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nests too deeply"), std::string::npos) << r.status().message();
}

TEST(Jinja, LongFlatChainNeitherCrashesNorRecursesDeeply) {
  std::string src = "{{ 0";
  for (int i = 0; i < 200000; ++i) src += "+1";
  src += " }}";
  auto r = render(src);  // either the sum or a clean "nests too deeply" error
  if (r.ok()) {
    EXPECT_EQ(*r, "200000");
  } else {
    EXPECT_NE(r.status().message().find("too deeply"), std::string::npos) << r.status().message();
  }
}

TEST(Jinja, DeeplyNestedValuesAreStopped) {
  auto r = render(
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}"
      "{{ ns.x == ns.x }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nests too deeply"), std::string::npos) << r.status().message();
}

TEST(Jinja, SelfReferencesDoNotLeakOrLoop) {
  // Run under the asan preset: LeakSanitizer would report the cycles.
  auto r = render(
      "{% set ns = namespace() %}{% set ns.me = ns %}{% macro m() %}{{ ns.me.me is defined }}{% endmacro %}"
      "{% set ns.m = m %}{{ ns.m() }}");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "True");
}

TEST(Jinja, FixedClockForStrftimeNow) {
  RenderLimits limits;
  limits.now = 0;  // 1970-01-01 in UTC; the year is the same in every time zone west of +1
  auto r = render("{{ strftime_now('%Y') }}", limits);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(*r == "1970" || *r == "1969") << *r;
}

}  // namespace
}  // namespace nibble::tokenizer::jinja
