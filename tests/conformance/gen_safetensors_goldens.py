#!/usr/bin/env python3
"""Writes safetensors goldens with the reference `safetensors` package (and huggingface_hub's
sharding) for src/io/safetensors_test.cpp, which checks that nibble reads them exactly and that
nibble's writer reproduces the single-file golden byte for byte.

Regenerate (from the repository root):
    /root/.venvs/nibble/bin/python tests/conformance/gen_safetensors_goldens.py

Outputs in tests/golden/safetensors/ (a few KB):
  all_dtypes.safetensors   every dtype torch can save, incl. 0-d, zero-sized, F4 and F8_E8M0
  empty.safetensors        no tensors, metadata only
  sharded/                 huggingface_hub.save_torch_state_dict with a tiny max_shard_size
  expected.json            for each file: metadata and every tensor's name, dtype string, header
                           shape and bytes (hex), taken from the torch tensors, not from the files
"""
import json
import os
import shutil

import safetensors
import torch
from huggingface_hub import save_torch_state_dict
from safetensors import safe_open
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "safetensors")

# torch dtype -> safetensors dtype string (the format's own names, see shared/docs/formats.md §6)
DTYPES = {
    torch.bool: "BOOL",
    torch.uint8: "U8",
    torch.int8: "I8",
    torch.uint16: "U16",
    torch.int16: "I16",
    torch.uint32: "U32",
    torch.int32: "I32",
    torch.uint64: "U64",
    torch.int64: "I64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.complex64: "C64",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
    torch.float8_e4m3fnuz: "F8_E4M3FNUZ",
    torch.float8_e5m2fnuz: "F8_E5M2FNUZ",
    torch.float8_e8m0fnu: "F8_E8M0",
    torch.float4_e2m1fn_x2: "F4",
}


def random_tensor(gen, dtype, shape):
    """Random bytes reinterpreted as `dtype` (storage shape `shape`)."""
    itemsize = torch.empty((), dtype=dtype).element_size() if dtype != torch.float4_e2m1fn_x2 else 1
    numel = 1
    for d in shape:
        numel *= d
    raw = torch.randint(0, 256, (numel * itemsize,), dtype=torch.uint8, generator=gen)
    if dtype == torch.bool:
        raw = raw % 2
    return raw.view(dtype).reshape(shape).clone()


def header_shape(tensor):
    shape = list(tensor.shape)
    if tensor.dtype == torch.float4_e2m1fn_x2 and shape:
        shape[-1] *= 2  # safetensors records the logical count: two F4 values per byte
    return shape


def tensor_rows(tensors):
    return [
        {
            "name": name,
            "dtype": DTYPES[t.dtype],
            "shape": header_shape(t),
            "hex": t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex(),
        }
        for name, t in sorted(tensors.items())
    ]


def describe(tensors, path, metadata):
    """Expected contents of `path`; also checks the reference reader agrees on metadata and shapes."""
    with safe_open(path, framework="pt") as f:
        assert (f.metadata() or {}) == (metadata or {})
        for name, t in tensors.items():
            assert list(f.get_slice(name).get_shape()) == header_shape(t), name
    return {"metadata": metadata or {}, "tensors": tensor_rows(tensors)}


def main():
    gen = torch.Generator().manual_seed(1234)
    os.makedirs(OUT, exist_ok=True)
    expected = {"safetensors_version": safetensors.__version__, "files": {}}

    tensors = {}
    shapes = [(2, 3), (5,), (2, 1, 2)]
    for i, dtype in enumerate(DTYPES):
        name = "t." + DTYPES[dtype].lower()
        tensors[name] = random_tensor(gen, dtype, shapes[i % len(shapes)])
    tensors["scalar.f32"] = torch.tensor(1.5, dtype=torch.float32)  # 0-d, shape []
    tensors["scalar.bf16"] = torch.tensor(-2.0, dtype=torch.bfloat16)
    tensors["empty.f16"] = torch.zeros((0, 3), dtype=torch.float16)  # zero-sized
    tensors["empty.u8"] = torch.zeros((4, 0), dtype=torch.uint8)
    tensors['odd "name" \\ \u00fc\u00df \u2603'] = torch.arange(3, dtype=torch.int32)  # JSON escaping
    metadata = {"format": "pt"}
    path = os.path.join(OUT, "all_dtypes.safetensors")
    save_file(tensors, path, metadata=metadata)
    expected["files"]["all_dtypes.safetensors"] = describe(tensors, path, metadata)

    path = os.path.join(OUT, "empty.safetensors")
    save_file({}, path, metadata={"note": "no tensors"})
    expected["files"]["empty.safetensors"] = describe({}, path, {"note": "no tensors"})

    sharded = {f"model.layers.{i}.w": random_tensor(gen, torch.bfloat16, (8, 16)) for i in range(4)}
    sharded["model.norm.weight"] = random_tensor(gen, torch.float32, (16,))
    sharded["model.layers.0.w_scale"] = random_tensor(gen, torch.float8_e4m3fn, (8, 2))
    shard_dir = os.path.join(OUT, "sharded")
    shutil.rmtree(shard_dir, ignore_errors=True)
    os.makedirs(shard_dir)
    save_torch_state_dict(sharded, shard_dir, max_shard_size=600)
    with open(os.path.join(shard_dir, "model.safetensors.index.json")) as f:
        index = json.load(f)
    assert len(set(index["weight_map"].values())) >= 2, "want several shards"
    entry = {"metadata": {"format": "pt"}, "tensors": tensor_rows(sharded)}
    entry["weight_map"] = index["weight_map"]
    expected["files"]["sharded"] = entry

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
