// Device profiles (data/devices.json as compiled in), custom strings and this-cpu.
#include "plan/device.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "base/thread_pool.h"

namespace nibble::plan {
namespace {

TEST(Devices, BuiltinCatalogHasEveryTargetWithSources) {
  auto catalog = builtin_catalog();
  ASSERT_TRUE(catalog.ok()) << catalog.status().message();
  for (const char* name : {"dgx-spark", "rtx-5090", "rtx-pro-6000", "h200", "m4-max", "ryzen-ai-max-395"}) {
    auto d = resolve_device(name, "");
    ASSERT_TRUE(d.ok()) << name;
    for (const char* field : {"memory_bytes", "usable_memory_bytes", "bandwidth_bytes_per_s",
                              "peak_bf16_flops", "decode_efficiency", "prefill_efficiency"}) {
      EXPECT_FALSE(d->sources[field].empty()) << name << " " << field;
    }
  }
  // Figures of shared/docs/devices.md.
  const DeviceProfile spark = *resolve_device("dgx-spark", "");
  EXPECT_DOUBLE_EQ(spark.memory_bytes, 128e9);
  EXPECT_DOUBLE_EQ(spark.bandwidth_bytes_per_s, 273e9);
  EXPECT_DOUBLE_EQ(spark.peak_fp4_flops, 500e12);
  EXPECT_DOUBLE_EQ(spark.link_bytes_per_s, 25e9);
  EXPECT_NEAR(spark.usable_memory_bytes / 1073741824.0, 119.7, 0.01);
  EXPECT_NE(spark.sources.at("peak_fp4_flops").find("[derived]"), std::string::npos);
  const DeviceProfile h200 = *resolve_device("h200", "");
  EXPECT_DOUBLE_EQ(h200.bandwidth_bytes_per_s, 4.8e12);
  EXPECT_DOUBLE_EQ(h200.peak_flops(ComputeClass::kFp4), 1979e12);  // no FP4 units: runs at FP8
  EXPECT_DOUBLE_EQ(resolve_device("rtx-5090", "")->bandwidth_bytes_per_s, 1792e9);
  EXPECT_DOUBLE_EQ(resolve_device("m4-max", "")->bandwidth_bytes_per_s, 546e9);
  EXPECT_DOUBLE_EQ(resolve_device("ryzen-ai-max-395", "")->bandwidth_bytes_per_s, 256e9);

  auto unknown = resolve_device("tpu-v9", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("dgx-spark"), std::string::npos);
}

TEST(Devices, CustomStrings) {
  auto d = resolve_device("custom:mem=128GB,bw=273GB/s,fp4=500T,bf16=86T", "");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_DOUBLE_EQ(d->memory_bytes, 128e9);
  EXPECT_DOUBLE_EQ(d->usable_memory_bytes, 128e9);
  EXPECT_DOUBLE_EQ(d->bandwidth_bytes_per_s, 273e9);
  EXPECT_DOUBLE_EQ(d->peak_fp4_flops, 500e12);
  EXPECT_DOUBLE_EQ(d->peak_bf16_flops, 86e12);
  EXPECT_DOUBLE_EQ(d->peak_flops(ComputeClass::kFp8), 86e12);
  EXPECT_GT(d->decode_efficiency, 0);

  auto e =
      resolve_device("custom:mem=96GiB,usable=90GiB,bw=1.8TB/s,fp8=1P,link=200Gb/s,kind=gpu-unified", "");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_DOUBLE_EQ(e->memory_bytes, 96.0 * 1073741824.0);
  EXPECT_DOUBLE_EQ(e->usable_memory_bytes, 90.0 * 1073741824.0);
  EXPECT_DOUBLE_EQ(e->bandwidth_bytes_per_s, 1.8e12);
  EXPECT_DOUBLE_EQ(e->link_bytes_per_s, 25e9);
  EXPECT_DOUBLE_EQ(e->peak_bf16_flops, 0.5e15);
  EXPECT_EQ(e->kind, DeviceKind::kGpuUnified);

  for (const char* bad : {"custom:mem=128GB", "custom:bw=1TB/s,fp4=1T", "custom:mem=x,bw=1TB/s,bf16=1T",
                          "custom:mem=1GB,bw=1TB/s,bf16=1T,colour=red", "custom:mem=1GB,bw=1TB/s",
                          "custom:mem=1furlong,bw=1TB/s,bf16=1T", "custom:mem=1GB,bw=1TB/s,bf16=1T,kind=tpu",
                          "custom:mem=-1GB,bw=1TB/s,bf16=1T", "custom:mem=1GB,bw=1TB/s,bf16=nan"}) {
    EXPECT_FALSE(resolve_device(bad, "").ok()) << bad;
  }
}

TEST(Devices, ReadsAnotherCatalogFile) {
  const std::string path = ::testing::TempDir() + "plan_devices_test.json";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(R"({"kinds": {"cpu": {
      "decode_efficiency": {"value": 0.5, "source": "t"}, "prefill_efficiency": {"value": 0.5, "source": "t"},
      "memory_margin_fraction": {"value": 0.1, "source": "t"}, "runtime_overhead_bytes": {"value": 1, "source": "t"},
      "link_latency_s": {"value": 0, "source": "t"}}},
    "devices": [{"name": "box", "kind": "cpu", "memory_bytes": {"value": 8e9, "source": "spec"},
      "usable_memory_bytes": {"value": 7e9, "source": "spec"}, "bandwidth_bytes_per_s": {"value": 5e10, "source": "spec"},
      "peak_flops": {"bf16": {"value": 1e12, "source": "spec", "derived": true}}}]})",
             f);
  std::fclose(f);
  auto d = resolve_device("box", path);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_DOUBLE_EQ(d->usable_memory_bytes, 7e9);
  EXPECT_DOUBLE_EQ(d->decode_efficiency, 0.5);
  EXPECT_EQ(d->sources.at("peak_bf16_flops"), "[derived] spec");
  EXPECT_FALSE(resolve_device("dgx-spark", path).ok());
  EXPECT_FALSE(resolve_device("box", path + ".missing").ok());
}

TEST(Devices, RejectsMalformedCatalogs) {
  EXPECT_FALSE(parse_devices_json("{", "f").ok());
  EXPECT_FALSE(
      parse_devices_json("{\"kinds\": {}, \"devices\": [{\"name\": \"x\", \"kind\": \"cpu\"}]}", "f").ok());
  EXPECT_FALSE(parse_devices_json("[]", "f").ok());
}

TEST(Devices, ThisCpuIsMeasured) {
  auto catalog = builtin_catalog();
  ASSERT_TRUE(catalog.ok());
  auto d = measure_this_cpu(*catalog);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->kind, DeviceKind::kCpu);
  EXPECT_GT(d->bandwidth_bytes_per_s, 0);
  EXPECT_GT(d->peak_bf16_flops, 0);
  EXPECT_GT(d->memory_bytes, 0);
  EXPECT_LE(d->usable_memory_bytes, d->memory_bytes);
  EXPECT_EQ(d->sources.count("bandwidth_bytes_per_s"), 1u);
}

}  // namespace
}  // namespace nibble::plan
