// `nibble bench serve ...`: the standard serving benchmark against any OpenAI-compatible server,
// with vLLM's metrics and output (../shared/docs/serving.md §1); `nibble bench plot` redraws
// saved sweeps. (`bench` is a command group; the offline `nibble bench MODEL` joins it later.)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>

#include "base/file_util.h"
#include "bench/metrics.h"
#include "bench/serve_client.h"
#include "bench/serve_dataset.h"
#include "bench/serve_plot.h"
#include "bench/serve_report.h"
#include "bench/serve_runner.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

namespace nibble::cli {

namespace {

using base::Result;
using base::Status;

// The local tokenizer behind --tokenizer DIR (the model folder or a tokenizer folder), adapted to
// the benchmark's PromptTokenizer. Random prompts draw ids from the base vocabulary (as vLLM's
// `tokenizer.vocab_size`, which leaves out added tokens) minus the special tokens.
Result<std::unique_ptr<bench::PromptTokenizer>> load_local_tokenizer(const std::string& dir) {
  auto tok_or = tokenizer::Tokenizer::from_dir(dir);
  if (!tok_or.ok()) return tok_or.status().with_context("--tokenizer");
  std::shared_ptr<tokenizer::Tokenizer> tok = std::move(*tok_or);
  bench::TokenizerFunctions fns;
  std::vector<bool> is_added(tok->vocab_size(), false);
  for (const auto& added : tok->added_tokens()) {
    if (added.id < is_added.size()) is_added[added.id] = true;
    if (added.special) fns.special_ids.push_back(static_cast<int32_t>(added.id));
  }
  int64_t base_vocab = 0;
  for (size_t id = 0; id < is_added.size(); ++id) {
    if (!is_added[id] && tok->id_to_token(static_cast<uint32_t>(id)).has_value()) base_vocab = id + 1;
  }
  fns.vocab_size = base_vocab;
  fns.name = dir;
  fns.encode = [tok](const std::string& text, bool add_special) -> Result<std::vector<int32_t>> {
    auto ids = tok->encode(text, add_special);
    if (!ids.ok()) return ids.status();
    return std::vector<int32_t>(ids->begin(), ids->end());
  };
  fns.decode = [tok](const std::vector<int32_t>& ids) -> Result<std::string> {
    std::vector<uint32_t> u;
    u.reserve(ids.size());
    for (int32_t id : ids) {
      if (id < 0) return base::invalid_argument("negative token id " + std::to_string(id));
      u.push_back(static_cast<uint32_t>(id));
    }
    return tok->decode(u, /*skip_special_tokens=*/false);
  };
  return bench::make_function_tokenizer(std::move(fns));
}

struct ServeFlags {
  std::string base_url;
  std::string endpoint = "/v1/completions";
  std::string model;
  std::string dataset = "random";
  std::string dataset_path;
  int64_t random_input_len = 1024;
  int64_t random_output_len = 128;
  double random_range_ratio = 0.0;
  int64_t random_prefix_len = 0;
  int64_t random_vocab_size = 0;
  int64_t sharegpt_output_len = 0;
  int64_t num_prompts = 1000;
  std::string max_concurrency;  // "2,4,8"
  double request_rate = std::numeric_limits<double>::infinity();
  double burstiness = 1.0;
  uint64_t seed = 0;
  bool ignore_eos = false;
  int64_t num_warmups = 0;
  std::string percentile_metrics = "ttft,tpot,itl";
  std::string metric_percentiles = "99";
  std::vector<std::string> goodput;
  bool save_result = false;
  bool save_detailed = false;
  std::string result_dir = ".";
  std::string result_filename;
  std::string label;
  std::string plot;
  std::string api_key;
  std::string tokenizer;
  double request_timeout_s = 6 * 3600;
  bool disable_progress = false;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

Result<std::vector<int64_t>> parse_concurrencies(const std::string& s) {
  std::vector<int64_t> values;
  for (const std::string& part : split_commas(s)) {
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (end == part.c_str() || *end != '\0' || v < 1) {
      return base::invalid_argument("--max-concurrency: '" + part + "' is not a positive integer");
    }
    values.push_back(v);
  }
  if (values.empty()) values.push_back(0);  // no limit
  return values;
}

Result<std::vector<double>> parse_percentiles(const std::string& s) {
  std::vector<double> values;
  for (const std::string& part : split_commas(s)) {
    char* end = nullptr;
    const double v = std::strtod(part.c_str(), &end);
    if (end == part.c_str() || *end != '\0' || !(v >= 0 && v <= 100)) {
      return base::invalid_argument("--metric-percentiles: '" + part + "' is not a number in [0, 100]");
    }
    values.push_back(v);
  }
  return values;
}

Result<std::vector<std::string>> parse_metric_names(const std::string& s) {
  std::vector<std::string> names = split_commas(s);
  for (const std::string& n : names) {
    if (n != "ttft" && n != "tpot" && n != "itl" && n != "e2el" && n != "client_queue_time" &&
        n != "e2el_including_client_queue") {
      return base::invalid_argument(
          "--percentile-metrics: unknown metric '" + n +
          "' (use ttft, tpot, itl, e2el, client_queue_time, e2el_including_client_queue)");
    }
  }
  return names;
}

Status write_json(const std::string& path, const nlohmann::ordered_json& doc) {
  return base::write_file_atomic(path, doc.dump(2) + "\n").with_context("writing " + path);
}

// Creates --result-dir (and parents) like vLLM's os.makedirs.
Status ensure_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return base::io_error("--result-dir " + dir + ": " + ec.message());
  return base::ok_status();
}

Result<std::vector<bench::SampleRequest>> build_dataset(const ServeFlags& f,
                                                        bench::PromptTokenizer* tokenizer,
                                                        int64_t num_requests, uint64_t seed) {
  if (f.dataset == "random") {
    if (!f.dataset_path.empty())
      return base::invalid_argument("--dataset-path is not used with --dataset random");
    if (tokenizer == nullptr) {
      return base::invalid_argument(
          "--dataset random needs a tokenizer: pass --tokenizer DIR or use a server "
          "with /tokenize and /detokenize");
    }
    bench::RandomDatasetOptions opts;
    opts.input_len = f.random_input_len;
    opts.output_len = f.random_output_len;
    opts.range_ratio = f.random_range_ratio;
    opts.prefix_len = f.random_prefix_len;
    bench::DatasetStats stats;
    NIBBLE_ASSIGN_OR_RETURN(auto requests,
                            bench::sample_random(*tokenizer, opts, num_requests, seed, &stats));
    if (stats.num_mismatched > 0) {
      std::fprintf(stderr,
                   "warning: %lld of %lld random prompts do not re-encode to their target length "
                   "(total mismatch %lld tokens)\n",
                   static_cast<long long>(stats.num_mismatched), static_cast<long long>(num_requests),
                   static_cast<long long>(stats.token_mismatch));
    }
    return requests;
  }
  if (f.dataset_path.empty())
    return base::invalid_argument("--dataset " + f.dataset + " needs --dataset-path");
  if (f.dataset == "sharegpt") {
    if (tokenizer == nullptr)
      return base::invalid_argument(
          "--dataset sharegpt needs a tokenizer (--tokenizer DIR or server /tokenize)");
    return bench::sample_sharegpt(*tokenizer, f.dataset_path, num_requests, seed, f.sharegpt_output_len);
  }
  if (f.dataset == "jsonl") return bench::sample_jsonl(tokenizer, f.dataset_path, num_requests);
  return base::invalid_argument("--dataset: unknown dataset '" + f.dataset +
                                "' (use random, sharegpt or jsonl)");
}

int run_serve(const ServeFlags& f) {
  auto fail = [](const Status& st) { return report_error(st); };
  auto api_or = bench::api_for_endpoint(f.endpoint);
  if (!api_or.ok()) return fail(api_or.status());
  auto concurrencies_or = parse_concurrencies(f.max_concurrency);
  if (!concurrencies_or.ok()) return fail(concurrencies_or.status());
  auto percentiles_or = parse_percentiles(f.metric_percentiles);
  if (!percentiles_or.ok()) return fail(percentiles_or.status());
  auto metric_names_or = parse_metric_names(f.percentile_metrics);
  if (!metric_names_or.ok()) return fail(metric_names_or.status());
  auto slo_or = bench::parse_goodput(f.goodput);
  if (!slo_or.ok()) return fail(slo_or.status());
  if (f.num_prompts < 1) return fail(base::invalid_argument("--num-prompts must be >= 1"));
  if (!(f.burstiness > 0)) return fail(base::invalid_argument("--burstiness must be > 0"));
  if (!(f.request_rate > 0)) return fail(base::invalid_argument("--request-rate must be > 0 (or inf)"));

  bench::ClientConfig client_cfg;
  client_cfg.base_url = f.base_url;
  client_cfg.endpoint = f.endpoint;
  client_cfg.api_key = f.api_key;
  if (client_cfg.api_key.empty()) {
    if (const char* env = std::getenv("OPENAI_API_KEY")) client_cfg.api_key = env;
  }
  client_cfg.timeout_s = f.request_timeout_s;
  auto control_or = bench::OpenAiClient::create(client_cfg);
  if (!control_or.ok()) return fail(control_or.status());
  bench::OpenAiClient& control = **control_or;

  std::string model = f.model;
  if (model.empty()) {
    auto model_or = bench::first_served_model(control);
    if (!model_or.ok()) return fail(model_or.status().with_context("--model not given"));
    model = *model_or;
  }

  std::unique_ptr<bench::PromptTokenizer> tokenizer;
  if (!f.tokenizer.empty()) {
    auto tok_or = load_local_tokenizer(f.tokenizer);
    if (!tok_or.ok()) return fail(tok_or.status());
    tokenizer = std::move(*tok_or);
  } else {
    auto tok_or = bench::ServerTokenizer::create(client_cfg, model, f.random_vocab_size);
    if (tok_or.ok()) {
      tokenizer = std::move(*tok_or);
    } else if (f.dataset != "jsonl") {
      return fail(tok_or.status().with_context("--dataset " + f.dataset + " needs the model's tokenizer"));
    } else {
      std::fprintf(stderr, "note: no tokenizer (%s); prompt lengths come from the server's usage\n",
                   tok_or.status().message().c_str());
    }
  }

  const bool ignore_eos = f.ignore_eos || f.dataset == "random";  // vLLM forces it for random
  const std::vector<int64_t>& concurrencies = *concurrencies_or;
  const bool sweep = concurrencies.size() > 1;

  // Prefix-cache hits already on the server mean prompts it has seen (e.g. the same --seed)
  // may be served from cache and inflate throughput.
  auto hits_before = bench::prefix_cache_hits(control);
  if (hits_before.ok() && *hits_before > 0) {
    std::fprintf(
        stderr,
        "warning: the server already reports %.0f prefix-cache hits; a re-run with the same "
        "--seed (%llu) re-sends prompts it may still have cached, which inflates throughput. Use a new "
        "--seed or restart the server for cold-cache numbers.\n",
        *hits_before, static_cast<unsigned long long>(f.seed));
  }

  if (f.save_result || f.save_detailed) {
    const Status st = ensure_dir(f.result_dir);
    if (!st.ok()) return fail(st);
  }
  std::vector<nlohmann::ordered_json> rows;
  const std::string date = bench::date_stamp();
  bool any_success = false;
  for (size_t point = 0; point < concurrencies.size(); ++point) {
    const int64_t concurrency = concurrencies[point];
    // Each sweep point gets fresh random prompts (seed + point) so it is not served from the
    // prefix cache the previous point warmed.
    const uint64_t seed = f.dataset == "random" ? f.seed + point : f.seed;
    if (sweep && f.dataset == "random" && point > 0) {
      std::fprintf(stderr,
                   "note: concurrency %lld uses prompts from seed %llu (fresh prompts per sweep point)\n",
                   static_cast<long long>(concurrency), static_cast<unsigned long long>(seed));
    }
    auto requests_or = build_dataset(f, tokenizer.get(), f.num_prompts, seed);
    if (!requests_or.ok()) return fail(requests_or.status());

    bench::RunOptions run_opts;
    run_opts.client = client_cfg;
    run_opts.api = *api_or;
    run_opts.model = model;
    run_opts.ignore_eos = ignore_eos;
    run_opts.request_rate = f.request_rate;
    run_opts.burstiness = f.burstiness;
    run_opts.max_concurrency = concurrency;
    run_opts.seed = seed;
    run_opts.progress = !f.disable_progress;

    if (f.num_warmups > 0) {
      // Warm-up prompts are drawn apart from the measured ones so they do not pre-fill the cache.
      std::vector<bench::SampleRequest> warmups;
      if (f.dataset == "random") {
        auto w_or = build_dataset(f, tokenizer.get(), f.num_warmups, seed ^ 0x5eedf00dULL);
        if (!w_or.ok()) return fail(w_or.status());
        warmups = std::move(*w_or);
      } else {
        for (int64_t i = 0; i < f.num_warmups; ++i) warmups.push_back((*requests_or)[0]);
      }
      std::fprintf(stderr, "warming up with %lld requests...\n", static_cast<long long>(f.num_warmups));
      bench::RunOptions warm_opts = run_opts;
      warm_opts.request_rate = std::numeric_limits<double>::infinity();
      warm_opts.progress = false;
      const bench::RunResult warm = bench::run_requests(warm_opts, warmups);
      int64_t warm_failed = 0;
      for (const auto& o : warm.outputs) warm_failed += o.success ? 0 : 1;
      if (warm_failed > 0)
        std::fprintf(stderr, "warning: %lld warm-up requests failed\n", static_cast<long long>(warm_failed));
    }

    std::fprintf(stderr, "benchmarking %s at %s, %lld prompts, max concurrency %s, request rate %s\n",
                 model.c_str(), (f.base_url + f.endpoint).c_str(), static_cast<long long>(f.num_prompts),
                 concurrency > 0 ? std::to_string(concurrency).c_str() : "unlimited",
                 std::isinf(f.request_rate) ? "inf" : std::to_string(f.request_rate).c_str());
    bench::RunResult run = bench::run_requests(run_opts, *requests_or);
    const int64_t num_retokenized = bench::resolve_output_lens(&run.outputs, tokenizer.get());
    if (num_retokenized > 0) {
      std::fprintf(stderr, "note: %lld responses had no usage; their output lengths were counted by %s\n",
                   static_cast<long long>(num_retokenized),
                   tokenizer ? "re-tokenizing the text" : "chunks as 1 token");
    }
    const bench::BenchmarkMetrics metrics =
        bench::compute_metrics(run.outputs, run.duration_s, *percentiles_or, *slo_or);
    any_success = any_success || metrics.completed > 0;

    bench::ReportContext ctx;
    ctx.backend = *api_or == bench::StreamApi::kChat ? "openai-chat" : "openai";
    ctx.label = f.label;
    ctx.model_id = model;
    ctx.tokenizer_id = tokenizer ? tokenizer->name() : "";
    ctx.num_prompts = f.num_prompts;
    ctx.request_rate = f.request_rate;
    ctx.burstiness = f.burstiness;
    ctx.max_concurrency = concurrency;
    ctx.percentile_metrics = *metric_names_or;
    ctx.percentiles = *percentiles_or;
    ctx.goodput = slo_or->any();
    ctx.date = date;

    std::fputs(bench::format_summary(metrics, run.duration_s, ctx).c_str(), stdout);
    std::fflush(stdout);
    if (metrics.failed > 0) {
      std::fprintf(stderr, "%lld requests failed:\n", static_cast<long long>(metrics.failed));
      for (const std::string& line : bench::summarize_errors(run.outputs, 5))
        std::fprintf(stderr, "  %s\n", line.c_str());
    }
    const nlohmann::ordered_json result = bench::result_json(metrics, run, ctx, f.save_detailed);
    if (f.save_result || f.save_detailed) {
      std::string name = f.result_filename.empty() ? bench::default_result_filename(ctx) : f.result_filename;
      if (!f.result_filename.empty() && sweep)
        name = "concurrency" + std::to_string(concurrency) + "-" + name;
      const std::string path = base::join_path(f.result_dir, name);
      const Status st = write_json(path, result);
      if (!st.ok()) return fail(st);
      std::fprintf(stderr, "saved %s\n", path.c_str());
    }
    rows.push_back(bench::sweep_row(result));
  }

  auto hits_after = bench::prefix_cache_hits(control);
  if (hits_before.ok() && hits_after.ok() && *hits_after > *hits_before) {
    std::fprintf(stderr, "note: the server counted %.0f prefix-cache hits during this run%s\n",
                 *hits_after - *hits_before,
                 f.random_prefix_len > 0 ? " (expected with --random-prefix-len)" : "");
  }

  bench::ReportContext sweep_ctx;
  sweep_ctx.backend = *api_or == bench::StreamApi::kChat ? "openai-chat" : "openai";
  sweep_ctx.label = f.label;
  sweep_ctx.model_id = model;
  sweep_ctx.request_rate = f.request_rate;
  sweep_ctx.date = date;
  nlohmann::ordered_json sweep_doc;
  sweep_doc["date"] = date;
  sweep_doc["model_id"] = model;
  sweep_doc["label"] = f.label.empty() ? sweep_ctx.backend : f.label;
  sweep_doc["rows"] = rows;
  if (sweep && (f.save_result || f.save_detailed)) {
    const std::string path = base::join_path(f.result_dir, bench::default_sweep_filename(sweep_ctx));
    const Status st = write_json(path, sweep_doc);
    if (!st.ok()) return fail(st);
    std::fprintf(stderr, "saved sweep %s\n", path.c_str());
  }
  if (sweep) {
    std::printf("%-16s %12s %12s %12s %12s %12s\n", "max_concurrency", "output tok/s", "total tok/s",
                "median TPOT", "median TTFT", "failed");
    for (const auto& row : rows) {
      std::printf("%-16lld %12.2f %12.2f %12.2f %12.2f %12lld\n",
                  static_cast<long long>(row["max_concurrency"].get<int64_t>()),
                  row["output_throughput"].get<double>(), row["total_token_throughput"].get<double>(),
                  row.value("median_tpot_ms", 0.0), row.value("median_ttft_ms", 0.0),
                  static_cast<long long>(row["failed"].get<int64_t>()));
    }
  }
  if (!f.plot.empty()) {
    auto series_or = bench::series_from_json(nlohmann::json::parse(sweep_doc.dump()), model);
    if (!series_or.ok()) return fail(series_or.status());
    const std::string svg = bench::render_sweep_svg({*series_or}, "Serving benchmark: " + model);
    const Status st = base::write_file_atomic(f.plot, svg).with_context("writing --plot " + f.plot);
    if (!st.ok()) return fail(st);
    std::fprintf(stderr, "saved plot %s\n", f.plot.c_str());
  }
  if (!any_success) return fail(base::io_error("every request failed"));
  return 0;
}

struct PlotFlags {
  std::vector<std::string> inputs;
  std::vector<std::string> labels;
  std::string output;
  std::string title = "Serving benchmark";
};

int run_plot(const PlotFlags& f) {
  std::vector<bench::SweepSeries> series;
  for (size_t i = 0; i < f.inputs.size(); ++i) {
    auto text_or = base::read_file(f.inputs[i]);
    if (!text_or.ok()) return report_error(text_or.status());
    const nlohmann::json doc = nlohmann::json::parse(*text_or, nullptr, false);
    if (doc.is_discarded()) return report_error(base::corrupt(f.inputs[i] + ": not JSON"));
    std::string label = i < f.labels.size() ? f.labels[i] : f.inputs[i];
    if (i >= f.labels.size()) {
      const size_t slash = label.find_last_of('/');
      if (slash != std::string::npos) label = label.substr(slash + 1);
      if (label.size() > 5 && label.substr(label.size() - 5) == ".json") label.resize(label.size() - 5);
    }
    auto s_or = bench::series_from_json(doc, label);
    if (!s_or.ok()) return report_error(s_or.status().with_context(f.inputs[i]));
    series.push_back(std::move(*s_or));
  }
  const Status st = base::write_file_atomic(f.output, bench::render_sweep_svg(series, f.title));
  if (!st.ok()) return report_error(st.with_context("writing " + f.output));
  std::fprintf(stderr, "saved plot %s\n", f.output.c_str());
  return 0;
}

}  // namespace

void add_bench(CLI::App& app, CommandFn* run) {
  CLI::App* bench =
      app.add_subcommand("bench",
                         "Benchmarks: `bench MODEL` offline pp/tg speed vs the roofline (with --concurrency: "
                         "throughput through the engine); "
                         "`bench serve` an OpenAI-compatible server");
  add_bench_offline(bench, run);

  auto f = std::make_shared<ServeFlags>();
  CLI::App* serve =
      bench->add_subcommand("serve", "Serving benchmark with vLLM's metrics (TTFT, TPOT, ITL, E2EL)");
  serve->add_option("--base-url", f->base_url, "Server URL, e.g. http://127.0.0.1:8000")->required();
  serve->add_option("--endpoint", f->endpoint, "/v1/completions or /v1/chat/completions")
      ->capture_default_str();
  serve->add_option("--model", f->model, "Model name to send (default: first of GET /v1/models)");
  serve->add_option("--dataset", f->dataset, "random, sharegpt or jsonl")->capture_default_str();
  serve->add_option("--dataset-path", f->dataset_path, "ShareGPT JSON or JSON-lines file");
  serve->add_option("--random-input-len", f->random_input_len, "Input tokens per random prompt")
      ->capture_default_str();
  serve->add_option("--random-output-len", f->random_output_len, "Output tokens per random request")
      ->capture_default_str();
  serve
      ->add_option("--random-range-ratio", f->random_range_ratio,
                   "Length spread r: uniform in [L(1-r), L(1+r)]")
      ->capture_default_str();
  serve->add_option("--random-prefix-len", f->random_prefix_len, "Shared random prefix tokens")
      ->capture_default_str();
  serve->add_option("--random-vocab-size", f->random_vocab_size,
                    "Token ids to draw from with the server tokenizer (default: probed via /detokenize)");
  serve->add_option("--sharegpt-output-len", f->sharegpt_output_len,
                    "Fixed output length for ShareGPT requests");
  serve->add_option("--num-prompts", f->num_prompts, "Number of requests")->capture_default_str();
  serve->add_option("--max-concurrency", f->max_concurrency,
                    "Concurrency limit(s); several values run a sweep, e.g. 2,4,8");
  serve->add_option("--request-rate", f->request_rate, "Requests per second (inf: all at once)")
      ->capture_default_str();
  serve->add_option("--burstiness", f->burstiness, "Gamma shape of arrivals (1 = Poisson)")
      ->capture_default_str();
  serve->add_option("--seed", f->seed, "Seed for prompts and arrivals")->capture_default_str();
  serve->add_flag("--ignore-eos", f->ignore_eos,
                  "Send ignore_eos (always on for --dataset random, as vLLM does)");
  serve->add_option("--num-warmups", f->num_warmups, "Unmeasured warm-up requests")->capture_default_str();
  serve
      ->add_option("--percentile-metrics", f->percentile_metrics,
                   "Metrics to report: ttft,tpot,itl,e2el[,client_queue_time,e2el_including_client_queue]")
      ->capture_default_str();
  serve->add_option("--metric-percentiles", f->metric_percentiles, "Percentiles, e.g. 50,90,99")
      ->capture_default_str();
  serve->add_option("--goodput", f->goodput, "SLOs in ms, e.g. ttft:500 tpot:50")->expected(1, 3);
  serve->add_flag("--save-result", f->save_result,
                  "Write the result JSON (and a sweep file for several concurrencies)");
  serve->add_flag("--save-detailed", f->save_detailed, "Also keep per-request arrays in the JSON");
  serve->add_option("--result-dir", f->result_dir, "Where to write results")->capture_default_str();
  serve->add_option("--result-filename", f->result_filename,
                    "Result file name (default: vLLM's automatic name)");
  serve->add_option("--label", f->label, "Label in file names and JSON (default: the backend)");
  serve->add_option("--plot", f->plot, "Write an SVG of throughput, TPOT and TTFT against concurrency");
  serve->add_option("--api-key", f->api_key, "Bearer token (default: $OPENAI_API_KEY)");
  serve->add_option("--tokenizer", f->tokenizer,
                    "Local tokenizer directory (default: the server's /tokenize)");
  serve->add_option("--request-timeout", f->request_timeout_s, "Seconds to wait on a connection or a read")
      ->capture_default_str();
  serve->add_flag("--disable-progress", f->disable_progress, "No progress output");
  serve->callback([run, f] { *run = [f] { return run_serve(*f); }; });

  auto p = std::make_shared<PlotFlags>();
  CLI::App* plot =
      bench->add_subcommand("plot", "Draw saved sweep/result JSON files as one SVG (one line per file)");
  plot->add_option("files", p->inputs, "Sweep or result JSON files")->required();
  plot->add_option("-o,--output", p->output, "SVG file to write")->required();
  plot->add_option("--labels", p->labels, "Legend labels, one per file")->delimiter(',');
  plot->add_option("--title", p->title, "Chart title")->capture_default_str();
  plot->callback([run, p] { *run = [p] { return run_plot(*p); }; });
}

}  // namespace nibble::cli
