#include "plan/report.h"

#include <cstdarg>
#include <cstdio>

namespace nibble::plan {
namespace {

using nlohmann::json;

constexpr double kGiB = 1073741824.0;

std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof(buf), format, args);
  va_end(args);
  return buf;
}

// 1234567 -> "1,234,567".
std::string grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string params(int64_t n) {
  const double v = static_cast<double>(n);
  if (v >= 1e9) return fmt("%.2fB", v / 1e9);
  if (v >= 1e6) return fmt("%.1fM", v / 1e6);
  if (v >= 1e3) return fmt("%.1fK", v / 1e3);
  return std::to_string(n);
}

std::string gib(double bytes) {
  return fmt("%9.2f", bytes / kGiB);
}

json memory_json(const MemoryPlan& m) {
  return {{"usable_bytes", m.usable_bytes},
          {"margin_bytes", m.margin_bytes},
          {"budget_bytes", m.budget_bytes},
          {"weight_bytes", m.weight_bytes},
          {"kv_bytes", m.kv_bytes},
          {"activation_bytes", m.activation_bytes},
          {"overhead_bytes", m.overhead_bytes},
          {"free_bytes", m.free_bytes},
          {"fits", m.fits}};
}

json speed_json(const SpeedPlan& s) {
  return {{"decode_tok_s_per_stream", s.decode_tok_s_per_stream},
          {"decode_tok_s_aggregate", s.decode_tok_s_aggregate},
          {"decode_step_s", s.decode_step_s},
          {"decode_bound", s.decode_compute_bound ? "compute" : "memory"},
          {"decode_bytes_per_step", s.decode_bytes_per_step},
          {"decode_flops_per_step", s.decode_flops_per_step},
          {"comm_s_per_step", s.comm_s_per_step},
          {"prefill_tok_s", s.prefill_tok_s},
          {"prefill_bound", s.prefill_compute_bound ? "compute" : "memory"},
          {"ttft_s", s.ttft_s}};
}

void memory_lines(std::string& out, const MemoryPlan& m, const DeviceProfile& d, const Estimate& e) {
  out += fmt("  %-34s %s GiB\n", "usable", gib(m.usable_bytes).c_str());
  out += fmt("  %-34s %s GiB\n", fmt("safety margin (%.0f%%)", d.memory_margin_fraction * 100).c_str(),
             gib(m.margin_bytes).c_str());
  out += fmt("  %-34s %s GiB\n", "weights (+ loader's fp32 vectors)",
             gib(static_cast<double>(m.weight_bytes)).c_str());
  out += fmt("  %-34s %s GiB\n",
             fmt("kv cache (%s x %s tok, %s)", grouped(e.options.concurrency).c_str(),
                 grouped(e.options.context_tokens).c_str(), kv_dtype_name(e.kv_dtype))
                 .c_str(),
             gib(static_cast<double>(m.kv_bytes)).c_str());
  out += fmt("  %-34s %s GiB\n", "activations / workspace",
             gib(static_cast<double>(m.activation_bytes)).c_str());
  out += fmt("  %-34s %s GiB\n", "runtime overhead", gib(static_cast<double>(m.overhead_bytes)).c_str());
  out += fmt("  %-34s %s GiB\n", "free", gib(m.free_bytes).c_str());
}

std::string speed_line(const SpeedPlan& s) {
  return fmt(
      "decode %.1f tok/s per stream, %.1f tok/s aggregate (%s-bound, %.2f GB and %.2f TFLOP per step%s)\n"
      "    prefill %s tok/s; TTFT %.2f s for a context-long prompt",
      s.decode_tok_s_per_stream, s.decode_tok_s_aggregate, s.decode_compute_bound ? "compute" : "memory",
      s.decode_bytes_per_step / 1e9, s.decode_flops_per_step / 1e12,
      s.comm_s_per_step > 0 ? fmt(", %.2f ms link", s.comm_s_per_step * 1e3).c_str() : "",
      s.prefill_tok_s >= 100 ? grouped(static_cast<int64_t>(s.prefill_tok_s)).c_str()
                             : fmt("%.2f", s.prefill_tok_s).c_str(),
      s.ttft_s);
}

}  // namespace

const char* kv_dtype_name(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kF32:
      return "f32";
    case KvDtype::kBf16:
      return "bf16";
    case KvDtype::kFp8:
      return "fp8";
  }
  return "?";
}

std::string format_table(const Estimate& e, const DeviceProfile& d, const std::string& model_name) {
  std::string out;
  out +=
      fmt("nibble plan: %s (%s) on %s\n", model_name.c_str(), e.architecture.c_str(), d.display_name.c_str());
  out +=
      fmt("  format %s, kv %s, context %s tokens, concurrency %s, nodes %d\n\n",
          format_choice_name(e.options.format), kv_dtype_name(e.kv_dtype),
          grouped(e.options.context_tokens).c_str(), grouped(e.options.concurrency).c_str(), e.options.nodes);
  out += fmt("  %-16s %-10s %10s %12s %12s\n", "weights", "format", "params", "GiB", "scales GiB");
  for (const WeightGroupBytes& g : e.weight_groups) {
    out += fmt("  %-16s %-10s %10s %12.3f %12.3f\n", group_name(g.group), weight_format(g.format).name,
               params(g.num_params).c_str(), static_cast<double>(g.bytes) / kGiB,
               static_cast<double>(g.scale_bytes) / kGiB);
  }
  out += fmt("  %-16s %-10s %10s %12.3f   (%.2f GB)\n", "total", "", params(e.num_params).c_str(),
             static_cast<double>(e.weight_bytes) / kGiB, static_cast<double>(e.weight_bytes) / 1e9);
  out += fmt("  active per token: %s params\n\n", params(e.active_params_per_token).c_str());

  out += fmt("memory on one %s\n", d.name.c_str());
  memory_lines(out, e.memory, d, e);
  out += fmt("  => %s on one device\n", e.memory.fits ? "FITS" : "DOES NOT FIT");
  if (e.tensor_parallel) {
    out += fmt("\nmemory per device, tensor parallel over %d\n", e.tensor_parallel->nodes);
    memory_lines(out, e.tensor_parallel->memory, d, e);
    out += fmt("  => %s on %d devices\n", e.tensor_parallel->memory.fits ? "FITS" : "DOES NOT FIT",
               e.options.nodes);
  }

  const KvLayout& kv = e.kv;
  out += fmt("\nkv cache: %s B/token over %s %s layers", grouped(kv.bytes_per_token_full).c_str(),
             grouped(kv.num_full_layers).c_str(), kv.mla ? "MLA (latent + rope key)" : "full-attention");
  if (kv.num_sliding_layers > 0 && kv.sliding_window > 0) {
    out += fmt(" + %s B/token over %s sliding layers capped at %s tokens",
               grouped(kv.bytes_per_token_sliding).c_str(), grouped(kv.num_sliding_layers).c_str(),
               grouped(kv.sliding_window).c_str());
  } else if (kv.num_sliding_layers > 0) {
    out += fmt(" + %s B/token over %s sliding layers holding every token",
               grouped(kv.bytes_per_token_sliding).c_str(), grouped(kv.num_sliding_layers).c_str());
  }
  out += fmt("\n  %s B per sequence at %s tokens\n", grouped(e.kv_bytes_per_sequence).c_str(),
             grouped(e.options.context_tokens).c_str());
  out +=
      fmt("limits (%d device%s): max context at concurrency %s: %s tokens (model max %s); "
          "max concurrency at %s tokens: %s; fewest devices: %s\n",
          e.options.nodes, e.options.nodes > 1 ? "s, tensor parallel" : "",
          grouped(e.options.concurrency).c_str(), grouped(e.max_context_at_concurrency).c_str(),
          grouped(e.model_max_context).c_str(), grouped(e.options.context_tokens).c_str(),
          grouped(e.max_concurrency_at_context).c_str(),
          e.min_nodes > 0 ? std::to_string(e.min_nodes).c_str() : "more than 64");

  out += fmt("\nspeed (roofline; decode at %.0f%% of bandwidth, prefill at %.0f%% of peak)\n",
             d.decode_efficiency * 100, d.prefill_efficiency * 100);
  out += "  one device: " + speed_line(e.speed) + "\n";
  if (e.tensor_parallel)
    out += fmt("  tensor parallel x%d: ", e.options.nodes) + speed_line(e.tensor_parallel->speed) + "\n";
  if (e.pipeline_parallel) {
    out += fmt("  pipeline parallel x%d: ", e.options.nodes) + speed_line(e.pipeline_parallel->speed) + "\n";
  }
  out += "\nassumptions:\n";
  for (const std::string& a : e.assumptions) out += "  - " + a + "\n";
  return out;
}

json to_json(const Estimate& e, const DeviceProfile& d, const std::string& model_name) {
  json groups = json::array();
  for (const WeightGroupBytes& g : e.weight_groups) {
    groups.push_back({{"group", group_name(g.group)},
                      {"format", weight_format(g.format).name},
                      {"num_params", g.num_params},
                      {"bytes", g.bytes},
                      {"scale_bytes", g.scale_bytes}});
  }
  json device = {{"name", d.name},
                 {"display_name", d.display_name},
                 {"kind", device_kind_name(d.kind)},
                 {"memory_bytes", d.memory_bytes},
                 {"usable_memory_bytes", d.usable_memory_bytes},
                 {"bandwidth_bytes_per_s", d.bandwidth_bytes_per_s},
                 {"peak_fp4_flops", d.peak_fp4_flops},
                 {"peak_fp8_flops", d.peak_fp8_flops},
                 {"peak_bf16_flops", d.peak_bf16_flops},
                 {"link_bytes_per_s", d.link_bytes_per_s},
                 {"decode_efficiency", d.decode_efficiency},
                 {"prefill_efficiency", d.prefill_efficiency},
                 {"memory_margin_fraction", d.memory_margin_fraction},
                 {"runtime_overhead_bytes", d.runtime_overhead_bytes},
                 {"sources", d.sources}};
  json j = {{"model",
             {{"name", model_name},
              {"architecture", e.architecture},
              {"num_params", e.num_params},
              {"active_params_per_token", e.active_params_per_token},
              {"max_context", e.model_max_context}}},
            {"device", device},
            {"options",
             {{"format", format_choice_name(e.options.format)},
              {"kv_dtype", kv_dtype_name(e.kv_dtype)},
              {"context_tokens", e.options.context_tokens},
              {"concurrency", e.options.concurrency},
              {"nodes", e.options.nodes},
              {"prefill_chunk_tokens", e.options.prefill_chunk_tokens}}},
            {"weights",
             {{"bytes", e.weight_bytes}, {"loader_copy_bytes", e.loader_copy_bytes}, {"groups", groups}}},
            {"kv_cache",
             {{"bytes_per_token_full_layers", e.kv.bytes_per_token_full},
              {"bytes_per_token_sliding_layers", e.kv.bytes_per_token_sliding},
              {"sliding_window", e.kv.sliding_window},
              {"block_tokens", e.kv.block_tokens},
              {"num_full_layers", e.kv.num_full_layers},
              {"num_sliding_layers", e.kv.num_sliding_layers},
              {"mla", e.kv.mla},
              {"bytes_per_sequence", e.kv_bytes_per_sequence}}},
            {"memory", memory_json(e.memory)},
            {"fits", e.fits},
            {"limits",
             {{"max_context_at_concurrency", e.max_context_at_concurrency},
              {"max_concurrency_at_context", e.max_concurrency_at_context},
              {"min_nodes", e.min_nodes}}},
            {"speed", speed_json(e.speed)},
            {"assumptions", e.assumptions}};
  if (e.tensor_parallel) {
    j["tensor_parallel"] = {{"nodes", e.tensor_parallel->nodes},
                            {"memory", memory_json(e.tensor_parallel->memory)},
                            {"speed", speed_json(e.tensor_parallel->speed)}};
  }
  if (e.pipeline_parallel) {
    j["pipeline_parallel"] = {{"nodes", e.pipeline_parallel->nodes},
                              {"memory", memory_json(e.pipeline_parallel->memory)},
                              {"speed", speed_json(e.pipeline_parallel->speed)}};
  }
  return j;
}

}  // namespace nibble::plan
