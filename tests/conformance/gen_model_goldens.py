"""Goldens for nibble's forward pass: transformers (FP32) on nibble's own random checkpoints.

For each case, `nibble make-model` writes a tiny checkpoint (BF16/F16/F32 weights); transformers
loads it with torch_dtype=float32 (the stored values upcast exactly) and eager attention, and we
record the logits of a few prompt positions and the greedy 32-token continuation. The C++ test
(tests/model_golden_test.cpp) rebuilds the same checkpoints with the same make-model flags and
compares: max|dlogit| <= 1e-3 * max|logit| and identical greedy tokens.

Regenerate (from the repository root, after building the `nibble` binary):
    /root/.venvs/nibble/bin/python tests/conformance/gen_model_goldens.py \
        --nibble build/dev/src/cli/nibble --out tests/golden/models
"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

TINY = ["--preset", "tiny"]
CASES = [
    # name, make-model flags, prompt length
    ("qwen3_tied_gqa2", ["--arch", "qwen3", *TINY, "--seed", "11", "--tie"], 24),
    ("qwen3_untied_gqa1", ["--arch", "qwen3", *TINY, "--seed", "12", "--no-tie", "--num-kv-heads", "4"], 24),
    ("qwen3_gqa4_long", ["--arch", "qwen3", *TINY, "--seed", "13", "--no-tie", "--num-kv-heads", "1"], 300),
    # --init-std 0.1 sharpens attention so that a RoPE error shows in the logits (with the default
    # 0.02, dropping the llama3 rescaling moves the logits by only 3e-4 x max|logit|).
    ("llama_llama3rope_gqa4_long",
     ["--arch", "llama", *TINY, "--seed", "14", "--rope-scaling", "llama3", "--num-kv-heads", "1",
      "--init-std", "0.1"], 300),
    ("llama_f16_gqa2", ["--arch", "llama", *TINY, "--seed", "15", "--dtype", "f16"], 20),
    ("qwen3_f32_untied_gqa2", ["--arch", "qwen3", *TINY, "--seed", "16", "--dtype", "f32", "--no-tie"], 20),
]
NUM_GENERATED = 32


def sig(x):
    return float("%.8g" % x)


def run_case(nibble, name, flags, prompt_len, workdir):
    model_dir = os.path.join(workdir, name)
    subprocess.run([nibble, "make-model", model_dir, *flags], check=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    vocab = model.config.vocab_size
    rng = np.random.RandomState(prompt_len * 1000 + len(name))
    prompt = [int(t) for t in rng.randint(3, vocab, size=prompt_len)]
    rows = sorted({0, prompt_len // 2, prompt_len - 3, prompt_len - 2, prompt_len - 1})
    with torch.no_grad():
        out = model(torch.tensor([prompt]), use_cache=True)
        logits = out.logits[0]
        past = out.past_key_values
        generated, margins = [], []
        last = logits[-1]
        for _ in range(NUM_GENERATED):
            top2 = torch.topk(last, 2).values
            margins.append(float(top2[0] - top2[1]))
            token = int(torch.argmax(last))
            generated.append(token)
            step = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
            past = step.past_key_values
            last = step.logits[0, -1]
    return {
        "name": name,
        "make_model_args": flags,
        "transformers_version": transformers.__version__,
        "prompt_ids": prompt,
        "logit_rows": rows,
        "logits": [[sig(v) for v in logits[r].tolist()] for r in rows],
        "greedy_ids": generated,
        "min_greedy_margin": min(margins),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nibble", required=True)
    ap.add_argument("--out", default="tests/golden/models")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        for name, flags, prompt_len in CASES:
            golden = run_case(args.nibble, name, flags, prompt_len, workdir)
            path = os.path.join(args.out, name + ".json")
            with open(path, "w") as f:
                json.dump(golden, f, separators=(",", ":"))
                f.write("\n")
            print(f"{path}: max|logit| {max(abs(v) for r in golden['logits'] for v in r):.4f}, "
                  f"greedy {golden['greedy_ids'][:8]}..., min margin {golden['min_greedy_margin']:.2e}")


if __name__ == "__main__":
    main()
