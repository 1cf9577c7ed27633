#!/usr/bin/env bash
# The main job, end to end, on this machine's CPU:
#   build -> make a demo model -> quantize it to NVFP4 -> serve it -> query it -> benchmark it.
# Run scripts/setup.sh first on a fresh machine. Everything lands in ./demo/ (override: NIBBLE_DEMO_DIR).
# The demo model uses the real Qwen3 tokenizer from ../shared/tokenizers/qwen3 (or NIBBLE_TOKENIZER=DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${NIBBLE_DEMO_DIR:-demo}
port=${NIBBLE_DEMO_PORT:-8123}
tok=${NIBBLE_TOKENIZER:-../shared/tokenizers/qwen3}
if [ ! -f "$tok/tokenizer.json" ]; then
  echo "demo: no tokenizer at $tok (set NIBBLE_TOKENIZER to a folder with tokenizer.json and tokenizer_config.json)" >&2
  exit 2
fi

echo "=== build (release preset)"
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target nibble
nibble=build/release/src/cli/nibble

rm -rf "$out"
mkdir -p "$out"
echo "=== make a demo model (Qwen3 architecture, random weights, BF16)"
"$nibble" make-model "$out/bf16" --arch qwen3 --preset small --tokenizer "$tok" --seed 1

echo "=== quantize it to NVFP4 (ModelOpt layout)"
"$nibble" quantize "$out/bf16" "$out/nvfp4" --format nvfp4 --scales mse

echo "=== generate with it"
"$nibble" run "$out/nvfp4" -p "The capital of France is" -n 16 --temp 0

echo "=== serve it on 127.0.0.1:$port"
"$nibble" serve "$out/nvfp4" --host 127.0.0.1 --port "$port" --served-model-name demo >"$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.5
done

echo "=== query it (OpenAI chat completions)"
curl -sS "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model": "demo", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16, "temperature": 0}'
echo

echo "=== benchmark it (vLLM-identical serving metrics)"
"$nibble" bench serve --base-url "http://127.0.0.1:$port" --model demo --tokenizer "$out/nvfp4" \
  --dataset random --random-input-len 64 --random-output-len 32 --num-prompts 16 \
  --max-concurrency 1,4 --ignore-eos --save-result --result-dir "$out" --plot "$out/bench.svg"
echo "demo: done; results in $out/ (bench.svg, result JSON)"
