"""Tiny compressed-tensors checkpoints (NVFP4 and FP8) for nibble's quantized loader.

Builds a 2-layer Qwen3 (hidden 64) with transformers, applies compressed-tensors 0.20's NVFP4
(`nvfp4-pack-quantized`) and FP8 (`float-quantized`, per-channel) schemes with its own
apply_quantization_config, fills the scales with its own generate_gparam / calculate_qparams (the
"minmax" observer math), compresses with ModelCompressor.compress_model and saves with
save_pretrained + ModelCompressor.update_config -- exactly what llm-compressor does after
calibration. Also stores the model's FP32 logits for a fixed prompt computed by transformers on
the *dequantized* weights (ModelCompressor.decompress_model), the oracle nibble must match.

Regenerate (from the repo root):
    /root/.venvs/nibble/bin/python tests/conformance/gen_quant_goldens.py
Writes tests/golden/quant/{ct_nvfp4,ct_fp8}/ (~0.3 MB).
"""
import json
import os
import shutil
import sys

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from compressed_tensors.compressors import ModelCompressor
from compressed_tensors.quantization import (QuantizationConfig, QuantizationScheme,
                                             apply_quantization_config)
from compressed_tensors.quantization.quant_scheme import FP8_DYNAMIC, NVFP4
from compressed_tensors.quantization.utils.helpers import calculate_qparams, generate_gparam

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "quant")
PROMPT = [1, 5, 9, 42, 100, 7, 3]


def tiny_model():
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                      max_position_embeddings=256, tie_word_embeddings=False, torch_dtype="bfloat16")
    model = Qwen3ForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.05)
    return model.to(torch.bfloat16)


def fill_scales(model, scheme_name):
    for name, m in model.named_modules():
        if not hasattr(m, "quantization_scheme") or m.quantization_scheme is None:
            continue
        args = m.quantization_scheme.weights
        w = m.weight.data
        if scheme_name == "nvfp4":
            gs = generate_gparam(w.min(), w.max())
            m.weight_global_scale.data.copy_(gs.reshape(m.weight_global_scale.shape))
            g = w.reshape(w.shape[0], -1, 16)
            scale, zp = calculate_qparams(g.amin(-1), g.amax(-1), args, global_scale=gs)
            if hasattr(m, "input_global_scale"):
                m.input_global_scale.data.copy_(torch.full_like(m.input_global_scale, 2688.0 / 4.0))
        else:
            scale, zp = calculate_qparams(w.amin(1, keepdim=True), w.amax(1, keepdim=True), args)
        m.weight_scale.data.copy_(scale.reshape(m.weight_scale.shape).to(m.weight_scale.dtype))
        if hasattr(m, "weight_zero_point"):
            m.weight_zero_point.data.copy_(zp.reshape(m.weight_zero_point.shape).to(m.weight_zero_point.dtype))


def build(kind):
    # Float32 master weights so that compressed-tensors' decompression (which returns the model's
    # dtype) is exact; unquantized tensors are therefore stored as F32.
    model = tiny_model().to(torch.float32)
    preset = NVFP4 if kind == "nvfp4" else FP8_DYNAMIC
    fmt = "nvfp4-pack-quantized" if kind == "nvfp4" else "float-quantized"
    qcfg = QuantizationConfig(config_groups={"group_0": QuantizationScheme(targets=["Linear"], **preset)},
                              ignore=["lm_head"], format=fmt)
    apply_quantization_config(model, qcfg, show_progress=False)
    fill_scales(model, kind)
    out = os.path.join(OUT, "ct_" + kind)
    shutil.rmtree(out, ignore_errors=True)
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=fmt)
    compressor.compress_model(model)
    model.save_pretrained(out)
    compressor.update_config(out)
    # Oracle: decompress with compressed-tensors, copy the dense weights into a plain model, run
    # transformers in FP32 (activations unquantized: nibble runs W4A16 / W8A16). compressed-tensors
    # 0.20 decompresses NVFP4 in BF16 (unpack_fp4_from_uint8's default dtype), which rounds
    # e2m1 * s / G; for NVFP4 the oracle is therefore the same formula evaluated in float32 on the
    # saved bytes, and it is checked to round to compressed-tensors' own BF16 result.
    from safetensors.torch import load_file
    saved = load_file(os.path.join(out, "model.safetensors"))
    compressor.decompress_model(model)
    if kind == "nvfp4":
        lut = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6])
        for name, m in model.named_modules():
            if name + ".weight_packed" not in saved:
                continue
            packed = saved[name + ".weight_packed"]
            codes = torch.stack([packed & 15, packed >> 4], -1).reshape(packed.shape[0], -1).long()
            s = saved[name + ".weight_scale"].float()
            g = saved[name + ".weight_global_scale"].float()
            w = (lut[codes].reshape(codes.shape[0], -1, 16) * (s / g).unsqueeze(-1)).reshape(codes.shape)
            ct_w = m.weight.data
            assert torch.equal(w.to(torch.bfloat16).float(), ct_w.float()) or torch.equal(w, ct_w.float()), name
            m.weight.data = w
    plain = tiny_model().to(torch.float32)
    dense = {k: v for k, v in model.state_dict().items() if k in plain.state_dict()}
    plain.load_state_dict({k: v.to(torch.float32) for k, v in dense.items()}, strict=True)
    plain.config._attn_implementation = "eager"
    with torch.no_grad():
        logits = plain(torch.tensor([PROMPT])).logits[0]
    with open(os.path.join(out, "logits.json"), "w") as f:
        json.dump({"prompt": PROMPT, "logits": [[float(x) for x in row] for row in logits],
                   "producer": "compressed-tensors " + __import__("compressed_tensors").__version__ +
                               ", transformers " + __import__("transformers").__version__}, f)
    return out, qcfg


def main():
    os.makedirs(OUT, exist_ok=True)
    for kind in ("nvfp4", "fp8"):
        out, _ = build(kind)
        print("wrote", out, sorted(os.listdir(out)))


if __name__ == "__main__":
    sys.exit(main())
