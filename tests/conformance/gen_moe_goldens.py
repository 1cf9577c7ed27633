"""Goldens for nibble's mixture-of-experts models: transformers (FP32) on `nibble make-model` checkpoints.

Same JSON format and C++ test as gen_model_goldens.py (tests/model_golden_test.cpp runs every file in
tests/golden/models/): logits of a few prompt positions and the greedy 32-token continuation.

gpt-oss checkpoints hold MXFP4 experts (`*_blocks` U8 + `*_scales` E8M0) and a quantization_config
{"quant_method": "mxfp4"}. Without a GPU (and without use_kernels) transformers 5.24 dequantizes them
at load to the dtype of the parameter they load into -- float32 here, since we pass dtype=float32.
Every MXFP4 value (E2M1 x 2^k) is exact in bf16 and fp32 alike, so the reference runs on exactly the
weights nibble decodes; the script checks that by decoding the blocks itself (numpy) and comparing
with the loaded expert parameters bit for bit.

Regenerate (from the repository root, after building the `nibble` binary):
    /root/.venvs/nibble/bin/python tests/conformance/gen_moe_goldens.py \\
        --nibble build/dev/src/cli/nibble --out tests/golden/models
"""
import argparse
import json
import os
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file

import gen_model_goldens as base

TINY = ["--preset", "tiny"]
CASES = [
    # name, make-model flags, prompt length. 300 > sliding_window (128) on gpt-oss's even layers.
    ("gptoss_tiny_long", ["--arch", "gpt-oss", *TINY, "--seed", "21", "--init-std", "0.1"], 300),
    ("gptoss_e16k2_short", ["--arch", "gpt-oss", *TINY, "--seed", "22", "--num-experts", "16",
                            "--experts-per-tok", "2", "--init-std", "0.05"], 24),
    ("qwen3moe_tiny_long", ["--arch", "qwen3-moe", *TINY, "--seed", "23", "--init-std", "0.1"], 300),
    ("qwen3moe_f32_short", ["--arch", "qwen3-moe", *TINY, "--seed", "24", "--dtype", "f32", "--init-std", "0.05"],
     24),
]

FP4_VALUES = np.array([+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
                       -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float32)


def decode_mxfp4(blocks, scales):
    """[E, N, K/32, 16] U8 + [E, N, K/32] U8 -> [E, N, K] float32 (gpt-oss nibble order)."""
    lo = FP4_VALUES[blocks & 0x0F]
    hi = FP4_VALUES[blocks >> 4]
    vals = np.stack([lo, hi], axis=-1).reshape(*blocks.shape[:-1], 32)
    vals = vals * np.exp2(scales.astype(np.int32) - 127).astype(np.float32)[..., None]
    return vals.reshape(*blocks.shape[:2], -1)


def check_gpt_oss_dequant(model_dir):
    model = base.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    tensors = load_file(os.path.join(model_dir, "model.safetensors"))
    for i, layer in enumerate(model.model.layers):
        p = f"model.layers.{i}.mlp.experts."
        for proj in ("gate_up_proj", "down_proj"):
            want = decode_mxfp4(tensors[p + proj + "_blocks"].numpy(), tensors[p + proj + "_scales"].numpy())  # [E, out, in]
            got = getattr(layer.mlp.experts, proj).detach().numpy()  # HF keeps [E, in, out]
            assert got.dtype == np.float32, got.dtype
            assert np.array_equal(got.transpose(0, 2, 1), want), f"layer {i} {proj}: dequantized weights differ"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nibble", required=True)
    ap.add_argument("--out", default="tests/golden/models")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        for name, flags, prompt_len in CASES:
            golden = base.run_case(args.nibble, name, flags, prompt_len, workdir)
            if "gpt-oss" in flags:
                check_gpt_oss_dequant(os.path.join(workdir, name))
            path = os.path.join(args.out, name + ".json")
            with open(path, "w") as f:
                json.dump(golden, f, separators=(",", ":"))
                f.write("\n")
            print(f"{path}: max|logit| {max(abs(v) for r in golden['logits'] for v in r):.4f}, "
                  f"greedy {golden['greedy_ids'][:8]}..., min margin {golden['min_greedy_margin']:.2e}")


if __name__ == "__main__":
    main()
