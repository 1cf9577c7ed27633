"""Goldens for `nibble plan`: the tensor list transformers builds for each golden config.json.

For every tests/golden/plan/<model>/config.json (real Hugging Face configs written from the
published shapes) this instantiates the transformers model on the meta device (no memory, no
weights), walks its state_dict and writes tests/golden/plan/<model>/tensors.json:

    {"transformers_version": ..., "num_params": N,
     "tensors": [{"name": "model.layers.N.self_attn.q_proj.weight", "shape": [8192, 5120],
                  "count": 64}, ...]}

Layer indices are folded to "N" and per-module expert indices to "X", with `count` the number of
tensors folded together, so the file stays small. Tied embeddings appear once (state_dict of a
tied model lists lm_head.weight, which is dropped when config.tie_word_embeddings is true).
It also writes three tiny configs (tiny-qwen3, tiny-qwen3-moe, tiny-gpt-oss) with their lists.

The plan tests compute the bytes of every format from these lists by the rules of
shared/docs/formats.md and compare them with plan::estimate (independent of the C++ tensor
enumeration in src/plan/weights.cpp).

Regenerate:  /root/.venvs/nibble/bin/python tests/conformance/gen_plan_tensors.py
"""
import json
import os
import re
from collections import OrderedDict

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "plan")

TINY = {
    "tiny-qwen3": {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": False,
        "head_dim": 32, "hidden_act": "silu", "hidden_size": 96, "intermediate_size": 200,
        "max_position_embeddings": 512, "num_attention_heads": 4, "num_hidden_layers": 3,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_sliding_window": False,
        "vocab_size": 1000},
    "tiny-qwen3-tied": {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": False,
        "head_dim": 64, "hidden_size": 128, "intermediate_size": 384,
        "max_position_embeddings": 512, "num_attention_heads": 4, "num_hidden_layers": 2,
        "num_key_value_heads": 1, "rms_norm_eps": 1e-06, "rope_theta": 1000000,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "vocab_size": 777},
    "tiny-qwen3-moe": {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "head_dim": 32,
        "hidden_size": 64, "intermediate_size": 160, "moe_intermediate_size": 48,
        "num_experts": 8, "num_experts_per_tok": 2, "decoder_sparse_step": 1,
        "mlp_only_layers": [1], "num_attention_heads": 4, "num_hidden_layers": 3,
        "num_key_value_heads": 2, "max_position_embeddings": 512, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "vocab_size": 500},
    "tiny-gpt-oss": {
        "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "attention_bias": True,
        "head_dim": 32, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4,
        "num_key_value_heads": 2, "num_hidden_layers": 4, "num_local_experts": 4,
        "num_experts_per_tok": 2, "sliding_window": 16, "vocab_size": 300,
        "layer_types": ["sliding_attention", "full_attention"] * 2,
        "max_position_embeddings": 1024, "tie_word_embeddings": False,
        "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn",
            "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"],
            "quant_method": "mxfp4"}},
}


def fold(name):
    name = re.sub(r"\.layers\.\d+\.", ".layers.N.", name)
    return re.sub(r"\.experts\.\d+\.", ".experts.X.", name)


def tensor_list(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    raw.pop("quantization_config", None)  # build the unquantized module tree
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    rows = OrderedDict()
    total = 0
    for name, t in model.state_dict(keep_vars=True).items():
        if config.tie_word_embeddings and name == "lm_head.weight":
            continue
        key = (fold(name), tuple(t.shape))
        rows[key] = rows.get(key, 0) + 1
        total += t.numel()
    return {"transformers_version": transformers.__version__, "num_params": total,
            "tensors": [{"name": n, "shape": list(s), "count": c} for (n, s), c in rows.items()]}


def main():
    for name, cfg in TINY.items():
        os.makedirs(os.path.join(ROOT, name), exist_ok=True)
        with open(os.path.join(ROOT, name, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
    for name in sorted(os.listdir(ROOT)):
        model_dir = os.path.join(ROOT, name)
        if not os.path.isfile(os.path.join(model_dir, "config.json")):
            continue
        out = tensor_list(model_dir)
        rows = ",\n".join("  " + json.dumps(t) for t in out["tensors"])
        with open(os.path.join(model_dir, "tensors.json"), "w") as f:
            f.write('{"transformers_version": "%s", "num_params": %d, "tensors": [\n%s\n]}\n'
                    % (out["transformers_version"], out["num_params"], rows))
        print(f"{name}: {out['num_params']:,} params, {len(out['tensors'])} rows")


if __name__ == "__main__":
    main()
