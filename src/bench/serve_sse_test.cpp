// SSE splitting and chunk accounting, against the protocol rules of serving.md §1.2 / §2.3.
#include "bench/serve_sse.h"

#include <gtest/gtest.h>

namespace nibble::bench {
namespace {

TEST(SseSplitter, SplitsOnBlankLinesAcrossPieces) {
  SseSplitter s;
  EXPECT_TRUE(s.add("data: {\"a\"").empty());
  auto m = s.add(":1}\n\ndata: [DO");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], "data: {\"a\":1}");
  m = s.add("NE]\r\n\r\n: ping\n\n");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], "data: [DONE]");
  EXPECT_EQ(m[1], ": ping");
  EXPECT_EQ(s.take_rest(), "");
  s.add("data: tail\n");
  EXPECT_EQ(s.take_rest(), "data: tail");
}

TEST(StreamAccumulator, CompletionsTimingAndUsage) {
  StreamAccumulator acc(10.0);
  acc.on_message(": ping", 10.01);  // comment: no chunk
  acc.on_message(R"(data: {"choices":[{"index":0,"text":"Hel"}]})", 10.05);
  acc.on_message(R"(data: {"choices":[{"index":0,"text":""}]})", 10.06);  // empty text still counts
  acc.on_message(R"(data: {"choices":[{"index":0,"text":"lo"}]})", 10.08);
  acc.on_message(R"(data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3}})", 10.2);
  acc.on_message("data: [DONE]", 10.21);
  EXPECT_TRUE(acc.done());
  RequestOutput out;
  out.prompt_len = 5;
  acc.finish(&out);
  EXPECT_TRUE(out.success);
  EXPECT_NEAR(out.ttft_s, 0.05, 1e-12);
  ASSERT_EQ(out.itl_s.size(), 2u);
  EXPECT_NEAR(out.itl_s[0], 0.01, 1e-12);
  EXPECT_NEAR(out.itl_s[1], 0.02, 1e-12);
  EXPECT_NEAR(out.latency_s, 0.08, 1e-12);  // the usage chunk does not extend E2EL
  EXPECT_EQ(out.generated_text, "Hello");
  EXPECT_EQ(out.output_tokens, 3);
  EXPECT_TRUE(out.output_len_from_usage);
  EXPECT_EQ(out.prompt_len, 12);  // usage.prompt_tokens overrides the dataset count
}

TEST(StreamAccumulator, ChatRoleChunkCountsForTtft) {
  StreamAccumulator acc(0.0);
  acc.on_message(R"(data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})", 0.1);
  acc.on_message(R"(data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]})", 0.15);
  acc.on_message("data: [DONE]", 0.2);
  RequestOutput out;
  out.prompt_len = 4;
  acc.finish(&out);
  EXPECT_TRUE(out.success);
  EXPECT_NEAR(out.ttft_s, 0.1, 1e-12);
  EXPECT_EQ(out.itl_s.size(), 1u);
  EXPECT_EQ(out.generated_text, "Hi");
  EXPECT_EQ(out.output_tokens, 0);  // no usage: the caller re-tokenizes
  EXPECT_FALSE(out.output_len_from_usage);
  EXPECT_EQ(out.prompt_len, 4);
}

TEST(StreamAccumulator, NoChunkIsAFailure) {
  StreamAccumulator acc(0.0);
  acc.on_message(R"(data: {"choices":[],"usage":{"completion_tokens":0}})", 0.1);
  acc.on_message("data: [DONE]", 0.2);
  RequestOutput out;
  acc.finish(&out);
  EXPECT_FALSE(out.success);
  EXPECT_NE(out.error.find("Never received a valid chunk"), std::string::npos);
}

TEST(StreamAccumulator, ErrorsInTheStreamFail) {
  {
    StreamAccumulator acc(0.0);
    acc.on_message(R"(data: {"choices":[{"text":"a"}]})", 0.1);
    acc.on_message(R"(data: {"error":{"message":"engine died","code":500}})", 0.2);
    RequestOutput out;
    acc.finish(&out);
    EXPECT_FALSE(out.success);
    EXPECT_NE(out.error.find("engine died"), std::string::npos);
  }
  {
    StreamAccumulator acc(0.0);
    acc.on_message("error: {\"code\":500,\"message\":\"slot gone\"}", 0.1);  // llama-server style
    RequestOutput out;
    acc.finish(&out);
    EXPECT_FALSE(out.success);
    EXPECT_NE(out.error.find("slot gone"), std::string::npos);
  }
  {
    StreamAccumulator acc(0.0);
    acc.on_message("data: {not json", 0.1);
    RequestOutput out;
    acc.finish(&out);
    EXPECT_FALSE(out.success);
    EXPECT_NE(out.error.find("not JSON"), std::string::npos);
  }
}

TEST(StreamAccumulator, MultiLineEventAndFieldNames) {
  StreamAccumulator acc(0.0);
  acc.on_message("event: message\nid: 7\ndata: {\"choices\":[{\"text\":\"x\"}]}", 0.3);
  RequestOutput out;
  acc.finish(&out);
  EXPECT_TRUE(out.success);
  EXPECT_NEAR(out.ttft_s, 0.3, 1e-12);
  EXPECT_EQ(out.generated_text, "x");
}

}  // namespace
}  // namespace nibble::bench
