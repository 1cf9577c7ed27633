"""Goldens for `nibble bench serve`'s metric math, produced by vLLM's own `calculate_metrics`.

The function is taken from a vLLM wheel at generation time (nothing of vLLM is copied into the
repository): the wheel's `vllm/benchmarks/serve.py` is parsed, and only `calculate_metrics`, the
`BenchmarkMetrics` dataclass and the constants they use are executed, on synthetic per-request
outputs (successes and failures, 1-token outputs, missing usage, several 1-s buckets). The results
go to tests/golden/bench/vllm_metrics.json, which `src/bench/metrics_golden_test.cpp` reads.

Regenerate (the venv has numpy; pip fetches only the wheel, without dependencies):
    /root/.venvs/nibble/bin/pip download vllm==0.33.0 --no-deps -d /tmp/vllmwheel
    /root/.venvs/nibble/bin/python tests/conformance/gen_bench_serve.py /tmp/vllmwheel/vllm-0.33.0-*.whl
"""
import ast
import dataclasses
import glob
import json
import os
import random
import sys
import warnings
import zipfile
from typing import Any

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "golden", "bench", "vllm_metrics.json")


def load_vllm_calculate_metrics(wheel_path):
    with zipfile.ZipFile(wheel_path) as wheel:
        source = wheel.read("vllm/benchmarks/serve.py").decode()
    tree = ast.parse(source)
    keep = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "calculate_metrics":
            keep.append(node)
        elif isinstance(node, ast.ClassDef) and node.name == "BenchmarkMetrics":
            keep.append(node)
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "MILLISECONDS_TO_SECONDS_CONVERSION" for t in node.targets):
            keep.append(node)
    names = sorted(n.name if hasattr(n, "name") else "constant" for n in keep)
    assert names == ["BenchmarkMetrics", "calculate_metrics", "constant"], names
    namespace = {
        "np": np, "warnings": warnings, "dataclass": dataclasses.dataclass, "Any": Any,
        "TERM_PLOTLIB_AVAILABLE": False, "SampleRequest": Any, "RequestFuncOutput": Any, "TokenizerLike": Any,
        "__name__": "vllm_calculate_metrics",
    }
    exec(compile(ast.Module(body=keep, type_ignores=[]), wheel_path + ":serve.py", "exec"), namespace)
    return namespace["calculate_metrics"], os.path.basename(wheel_path)


@dataclasses.dataclass
class Output:  # the fields of vLLM's RequestFuncOutput that calculate_metrics reads
    success: bool = False
    latency: float = 0.0
    output_tokens: int = 0
    ttft: float = 0.0
    itl: list = dataclasses.field(default_factory=list)
    prompt_len: int = 0
    error: str = ""
    start_time: float = 0.0
    generated_text: str = ""
    input_audio_duration: float = 0.0


def make_case(rng, num_requests, span_s, percentiles, goodput):
    outputs = []
    for _ in range(num_requests):
        o = Output(start_time=rng.uniform(0, span_s), prompt_len=rng.randint(1, 300))
        if rng.random() < 0.15:
            o.error = "HTTP 500"
            outputs.append(o)
            continue
        o.success = True
        o.ttft = rng.uniform(0.005, 0.4)
        num_chunks = rng.choice([1, 1, 2, 5, 12, 30])
        o.itl = [rng.uniform(0.002, 0.08) for _ in range(num_chunks - 1)]
        o.latency = o.ttft + sum(o.itl)
        # usage: usually = chunks (or more: several tokens per chunk); sometimes missing (0)
        o.output_tokens = rng.choice([num_chunks, num_chunks, num_chunks + rng.randint(0, 5), 0])
        outputs.append(o)
    dur_s = max((o.start_time + o.latency for o in outputs), default=1.0) + 0.01
    calc, _ = VLLM
    metrics, output_lens = calc(input_requests=None, outputs=outputs, dur_s=dur_s, tokenizer=None,
                                selected_percentiles=percentiles, goodput_config_dict=goodput)
    expected = dataclasses.asdict(metrics)
    expected["actual_output_lens"] = output_lens
    for key, value in list(expected.items()):
        if isinstance(value, (np.floating, np.integer)):
            expected[key] = value.item()
        if key.startswith("percentiles_"):
            expected[key] = [[float(p), float(v)] for p, v in value]
    return {
        "dur_s": dur_s,
        "percentiles": percentiles,
        "goodput": goodput,
        "outputs": [{"success": o.success, "prompt_len": o.prompt_len, "output_tokens": o.output_tokens,
                     "ttft": o.ttft, "itl": o.itl, "latency": o.latency, "start_time": o.start_time}
                    for o in outputs],
        "expected": expected,
    }


def main():
    paths = sys.argv[1:] or glob.glob("/tmp/vllmwheel/vllm-*.whl")
    if not paths:
        sys.exit(__doc__)
    global VLLM
    VLLM = load_vllm_calculate_metrics(paths[0])
    rng = random.Random(20260301)
    cases = [
        make_case(rng, 40, 3.5, [50.0, 90.0, 99.0, 99.9], {}),
        make_case(rng, 60, 0.8, [99.0], {"ttft": 250.0, "tpot": 40.0}),
        make_case(rng, 25, 6.0, [25.0, 75.0], {"e2el": 500.0}),
        make_case(rng, 3, 0.1, [99.0], {"ttft": 100.0, "tpot": 30.0, "e2el": 800.0}),
    ]
    doc = {"generator": "tests/conformance/gen_bench_serve.py", "vllm_wheel": VLLM[1], "cases": cases}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=0)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases from {VLLM[1]}")


if __name__ == "__main__":
    main()
