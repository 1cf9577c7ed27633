#!/usr/bin/env python3
"""Goldens for nibble's formats layer, from torch casts and the producers' own quantizers.

Writes tests/golden/formats/:
  elements.json      all-codes decode tables (torch float8_e4m3fn / float8_e5m2 / float8_e8m0fnu)
                     and encodes of random + edge floats through torch casts, ModelOpt's
                     NVFP4QTensor._cast_fp4 and compressed-tensors' cast_to_fp4 + pack_fp4_to_uint8.
  quant.json         one entry per quantization case: producer function, nibble format + rule,
                     shape, stored tensor scale, and the names of the binary files below.
  <input>.x.f32      an input, float32 little-endian, [rows, cols] (shared by several cases)
  <case>.data.u8     the stored element bytes the producer wrote
  <case>.scales.bin  the stored block scales (E4M3 / E8M0 bytes, or float32 little-endian)

Floats are written in JSON as 8-hex-digit float32 bit patterns so NaN payloads and -0.0 survive.

Regenerate (CPU is enough; needs torch >= 2.9 for float8_e8m0fnu):
  /root/.venvs/nibble/bin/pip install nvidia-modelopt compressed-tensors requests gguf
  /root/.venvs/nibble/bin/python tests/conformance/gen_format_goldens.py
Versions used for the committed goldens are recorded in quant.json ("versions").
"""

import json
import os
import struct
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "formats")


def f32_hex(values):
    arr = np.asarray(values, dtype=np.float32).reshape(-1)
    return ["%08x" % v for v in arr.view(np.uint32).tolist()]


def edge_inputs():
    """Random and edge float32 inputs for the element encoders."""
    vals = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), -float("nan"),
            1e-45, -1e-45, 1e-38, 2.0 ** -126, 2.0 ** -127, 2.0 ** -128, 1.5 * 2.0 ** -127,
            3.4e38, -3.4e38, 1e30, 6.0, 7.0, 448.0, 449.0, 464.0, 464.5, 479.0, 480.0, 500.0,
            57344.0, 61439.0, 61440.0, 61441.0, 65536.0]
    # Every midpoint (and its float neighbours) between adjacent E4M3 / E5M2 / E2M1 codes.
    for dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        codes = torch.arange(0, 0x7F, dtype=torch.uint8).view(dtype).float()
        codes = codes[torch.isfinite(codes)].tolist()
        for a, b in zip(codes, codes[1:]):
            m = np.float32((a + b) / 2)
            vals += [float(m), float(np.nextafter(m, np.float32(0))), float(np.nextafter(m, np.float32(1e9)))]
    e2m1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    for a, b in zip(e2m1, e2m1[1:]):
        m = np.float32((a + b) / 2)
        vals += [float(m), float(np.nextafter(m, np.float32(0))), float(np.nextafter(m, np.float32(9)))]
    for k in range(-130, 128, 3):
        vals += [2.0 ** k, 1.5 * 2.0 ** k, 1.25 * 2.0 ** k]
    vals += [-v for v in list(vals)]
    rng = np.random.default_rng(1234)
    vals += (rng.standard_normal(400) * 3).tolist()
    vals += (rng.standard_normal(400) * 200).tolist()
    vals += (np.exp(rng.uniform(-100, 100, 400)) * rng.choice([-1, 1], 400)).tolist()
    if len(vals) % 2:
        vals.append(0.5)
    return np.asarray(vals, dtype=np.float64).astype(np.float32)


def element_goldens():
    from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor
    from compressed_tensors.compressors.nvfp4.helpers import pack_fp4_to_uint8
    from compressed_tensors.quantization.quant_args import FP4_E2M1_DATA

    all_codes = torch.arange(256, dtype=torch.uint8)
    out = {
        "e4m3_decode": f32_hex(all_codes.view(torch.float8_e4m3fn).float().numpy()),
        "e5m2_decode": f32_hex(all_codes.view(torch.float8_e5m2).float().numpy()),
        "e8m0_decode": f32_hex(all_codes.view(torch.float8_e8m0fnu).float().numpy()),
    }
    x = edge_inputs()
    xt = torch.from_numpy(x.copy())
    out["inputs"] = f32_hex(x)
    out["e4m3_encode"] = xt.to(torch.float8_e4m3fn).view(torch.uint8).tolist()
    out["e5m2_encode"] = xt.to(torch.float8_e5m2).view(torch.uint8).tolist()
    out["e8m0_encode"] = xt.to(torch.float8_e8m0fnu).view(torch.uint8).tolist()
    out["e2m1_modelopt"] = NVFP4QTensor._cast_fp4(xt.clone()).tolist()
    # compressed-tensors: clamp to ±6, cast to the nearest E2M1 value, pack (sign from signbit).
    # NaN is unspecified there (its (x*2).to(int8) is undefined), so NaN inputs are left out (-1).
    finite = torch.isfinite(xt) | torch.isinf(xt)
    ct_in = torch.where(finite, xt, torch.zeros_like(xt)).clamp(-6.0, 6.0)
    ct_vals = FP4_E2M1_DATA.cast_to_fp4(ct_in.clone())
    packed = pack_fp4_to_uint8(ct_vals.reshape(1, -1)).reshape(-1)
    codes = torch.stack([packed & 0x0F, packed >> 4], dim=1).reshape(-1)
    out["e2m1_ct"] = [int(c) if bool(f) else -1 for c, f in zip(codes.tolist(), finite.tolist())]
    # llama.cpp's UE4M3 via gguf-py (a port of ggml_ue4m3_to_fp32 / ggml_fp32_to_ue4m3). gguf-py's
    # decoder returns half the value (doubled E2M1 table). Its numpy encoder sends NaN to 0x7E where
    # the C code (`if (!(x > 0)) return 0`) gives 0, so NaN inputs are left out (-1).
    from gguf.quants import NVFP4 as GgNvfp4

    out["ue4m3_decode"] = f32_hex(GgNvfp4.ue4m3_to_fp32(np.arange(256, dtype=np.uint8)).astype(np.float32) * 2)
    with np.errstate(all="ignore"):
        ue = GgNvfp4.fp32_to_ue4m3(x.copy())
    out["ue4m3_encode"] = [int(c) if not np.isnan(v) else -1 for c, v in zip(ue.tolist(), x.tolist())]
    return out


def save_case(cases, name, producer, fmt, rule, x, data, scales, tensor_scale=None, deq=None,
              nibble_order="pairs"):
    input_name, x = x
    x = x.contiguous().float()
    rows, cols = x.shape
    x.numpy().astype("<f4").tofile(os.path.join(OUT, input_name + ".x.f32"))
    data.contiguous().view(torch.uint8).numpy().tofile(os.path.join(OUT, name + ".data.u8"))
    if scales.dtype == torch.float32:
        scales.contiguous().numpy().astype("<f4").tofile(os.path.join(OUT, name + ".scales.bin"))
    else:
        scales.contiguous().view(torch.uint8).numpy().tofile(os.path.join(OUT, name + ".scales.bin"))
    entry = {"name": name, "input": input_name, "producer": producer, "format": fmt, "rule": rule, "rows": rows,
             "cols": cols, "data_bytes": data.numel() * data.element_size(),
             "scale_bytes": scales.numel() * scales.element_size(), "nibble_order": nibble_order}
    if deq is not None:  # the producer's own dequantization of its output, float32 [rows, cols]
        deq.contiguous().float().numpy().astype("<f4").tofile(os.path.join(OUT, name + ".deq.f32"))
        entry["dequant"] = name + ".deq.f32"
    if tensor_scale is not None:
        entry["tensor_scale"] = f32_hex([float(tensor_scale.reshape(-1)[0])])[0]
    cases.append(entry)


def inputs():
    """Named float32 test tensors."""
    g = torch.Generator().manual_seed(42)
    normal = torch.randn(64, 128, generator=g) * 0.02
    heavy = torch.distributions.StudentT(3.0).sample((32, 256)) * 0.01
    # Exact E2M1 midpoints after scaling (the tensor amax 6 makes the NVFP4 divisor ~1), -0.0,
    # an all-zero block and a block with tiny values.
    mids = torch.tensor([6, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -0.75, -1.25, -1.75,
                         -2.5, -3.5, -5.0, -0.0] * 4 + [0.0] * 32 + [1e-3, -1e-3] * 16)
    edge = mids.reshape(2, 64)
    ragged = torch.randn(8, 40, generator=g)  # 40 is not a multiple of 16 or 32
    fp8 = torch.randn(160, 260, generator=g)  # neither dimension a multiple of 128
    fp8[3, 5] = 50.0
    # Checkpoints are BF16: the producers get a BF16 tensor (stored here as the same values in F32).
    bf16 = (torch.randn(32, 128, generator=g) * 0.02).to(torch.bfloat16)
    named = dict(normal=normal, heavy=heavy, edge=edge, ragged=ragged, fp8=fp8, bf16=bf16)
    return [(k, v) for k, v in named.items()]


def modelopt_cases(cases, named_inputs):
    from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor
    from modelopt.torch.quantization.qtensor.mxfp4_tensor import MXFP4QTensor
    from modelopt.torch.quantization.qtensor.fp8_tensor import FP8QTensor

    normal, heavy, edge, ragged, fp8, bf16 = named_inputs
    for name, x in [("mo_nvfp4_normal", normal), ("mo_nvfp4_heavy", heavy), ("mo_nvfp4_edge", edge),
                    ("mo_nvfp4_ragged", ragged), ("mo_nvfp4_bf16", bf16)]:
        q, s, s2 = NVFP4QTensor.quantize(x[1].clone(), 16)
        deq = None
        if name == "mo_nvfp4_normal":
            deq = q.dequantize(dtype=torch.float32, scale=s, double_scale=s2, block_sizes={-1: 16})
        save_case(cases, name, "modelopt NVFP4QTensor.quantize(x, 16)", "nvfp4", "modelopt", x,
                  q._quantized_data, s, s2, deq)
    for name, x in [("mo_mxfp4_normal", normal), ("mo_mxfp4_heavy", heavy), ("mo_mxfp4_edge", edge), ("mo_mxfp4_bf16", bf16)]:
        q, e = MXFP4QTensor.quantize(x[1].clone(), 32)
        deq = None
        if name in ("mo_mxfp4_normal", "mo_mxfp4_edge"):
            deq = q.dequantize(dtype=torch.float32, scale=e, block_sizes={-1: 32})
        save_case(cases, name, "modelopt MXFP4QTensor.quantize(x, 32)", "mxfp4", "modelopt", x,
                  q._quantized_data, e.reshape(-1), deq=deq)
    q, s = FP8QTensor.quantize(fp8[1].clone())
    save_case(cases, "mo_fp8_tensor", "modelopt FP8QTensor.quantize(x)", "fp8", "modelopt", fp8,
              q._quantized_data, s.float().reshape(-1))
    q, s = FP8QTensor.quantize(fp8[1].clone(), axis=0)
    save_case(cases, "mo_fp8_channel", "modelopt FP8QTensor.quantize(x, axis=0)", "fp8-channel",
              "modelopt", fp8, q._quantized_data, s.float().reshape(-1))
    q, s = FP8QTensor.quantize(fp8[1].clone(), block_sizes={-1: 128, -2: 128})
    save_case(cases, "mo_fp8_block", "modelopt FP8QTensor.quantize(x, block_sizes={-1:128,-2:128})",
              "fp8-block", "modelopt", fp8, q._quantized_data, s.float().reshape(-1))


def ct_cases(cases, named_inputs):
    from compressed_tensors.compressors.nvfp4.helpers import pack_fp4_to_uint8
    from compressed_tensors.compressors.mx_utils import compress_mx_scale
    from compressed_tensors.quantization.lifecycle.forward import dequantize, quantize
    from compressed_tensors.quantization.quant_scheme import FP8, FP8_DYNAMIC, MXFP4, NVFP4
    from compressed_tensors.quantization.utils.helpers import calculate_qparams, generate_gparam

    normal, heavy, edge, _, fp8, bf16 = named_inputs

    def group_minmax(x, group):
        v = x.reshape(x.shape[0], -1, group)
        return v.amin(-1), v.amax(-1)

    args = NVFP4["weights"]
    for name, x in [("ct_nvfp4_normal", normal), ("ct_nvfp4_heavy", heavy), ("ct_nvfp4_edge", edge),
                    ("ct_nvfp4_bf16", bf16)]:
        gs = generate_gparam(x[1].min(), x[1].max())
        mn, mx = group_minmax(x[1], 16)
        scale, zp = calculate_qparams(mn, mx, args, global_scale=gs)
        q = quantize(x[1], scale, None, args, global_scale=gs)
        deq = dequantize(q, scale, None, args, dtype=torch.float32, global_scale=gs) \
            if name == "ct_nvfp4_normal" else None
        save_case(cases, name, "compressed-tensors generate_gparam + calculate_qparams + quantize + "
                  "pack_fp4_to_uint8 (NVFP4 preset)", "nvfp4-ct",
                  "compressed-tensors-bf16" if x[1].dtype == torch.bfloat16 else "compressed-tensors", x,
                  pack_fp4_to_uint8(q), scale.to(torch.float8_e4m3fn), gs, deq)
    args = MXFP4["weights"]
    for name, x in [("ct_mxfp4_normal", normal), ("ct_mxfp4_heavy", heavy), ("ct_mxfp4_edge", edge), ("ct_mxfp4_bf16", bf16)]:
        mn, mx = group_minmax(x[1], 32)
        scale, zp = calculate_qparams(mn, mx, args)
        q = quantize(x[1], scale, None, args)
        save_case(cases, name, "compressed-tensors calculate_qparams + quantize + pack_fp4_to_uint8 + "
                  "compress_mx_scale (MXFP4 preset)", "mxfp4", "compressed-tensors", x,
                  pack_fp4_to_uint8(q), compress_mx_scale(scale, torch.uint8))
    args = FP8["weights"]
    w = fp8[1]
    scale, zp = calculate_qparams(w.min().reshape(1), w.max().reshape(1), args)
    q = quantize(w, scale, None, args)
    save_case(cases, "ct_fp8_tensor", "compressed-tensors calculate_qparams + quantize (FP8 preset)",
              "fp8", "compressed-tensors", fp8, q.to(torch.float8_e4m3fn), scale.float().reshape(-1))
    args = FP8_DYNAMIC["weights"]
    scale, zp = calculate_qparams(w.amin(1, keepdim=True), w.amax(1, keepdim=True), args)
    q = quantize(w, scale, None, args)
    save_case(cases, "ct_fp8_channel", "compressed-tensors calculate_qparams + quantize (FP8_DYNAMIC "
              "preset weights)", "fp8-channel", "compressed-tensors", fp8, q.to(torch.float8_e4m3fn),
              scale.float().reshape(-1))


def gguf_cases(cases, named_inputs):
    """llama.cpp's MXFP4 reference quantizer as ported in gguf-py (quantize_row_mxfp4_ref)."""
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import quantize as gg_quantize

    normal, heavy, edge = named_inputs[0], named_inputs[1], named_inputs[2]
    for name, x in [("gg_mxfp4_normal", normal), ("gg_mxfp4_heavy", heavy), ("gg_mxfp4_edge", edge)]:
        rows, cols = x[1].shape
        blocks = gg_quantize(x[1].numpy().astype(np.float32), GGMLQuantizationType.MXFP4)
        blocks = blocks.reshape(rows, cols // 32, 17)
        scales = torch.from_numpy(np.ascontiguousarray(blocks[:, :, 0]))
        data = torch.from_numpy(np.ascontiguousarray(blocks[:, :, 1:]).reshape(rows, cols // 2))
        save_case(cases, name, "gguf-py quants.quantize(x, MXFP4) (llama.cpp block_mxfp4, split into "
                  "scale bytes and qs)", "mxfp4", "llama.cpp", x, data, scales, nibble_order="halves")


def main():
    import importlib.metadata as md

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "elements.json"), "w") as f:
        json.dump(element_goldens(), f, separators=(",", ":"))
    cases = []
    torch.manual_seed(42)  # StudentT samples from the global generator
    named_inputs = inputs()
    modelopt_cases(cases, named_inputs)
    ct_cases(cases, named_inputs)
    gguf_cases(cases, named_inputs)
    versions = {p: md.version(p) for p in ("torch", "nvidia-modelopt", "compressed-tensors", "gguf")}
    with open(os.path.join(OUT, "quant.json"), "w") as f:
        json.dump({"versions": versions, "cases": cases}, f, indent=1)
    print("wrote %d cases to %s" % (len(cases), OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
