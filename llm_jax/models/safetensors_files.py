"""A checkpoint folder's safetensors, memory-mapped; and writing them, in shards if asked.

We parse the header ourselves and hand out numpy views of a memory map: a sharded load reads
only its bytes, bf16 works, and nothing is unpickled."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

from llm_jax.models.hf_config import HFFormatError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")

# The format's dtype names. Non-float ones are mapped too so that a checkpoint holding them
# (quantized weights, integer buffers) gets a clear error from the reader, not from here.
_DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
           "I32": np.int32, "U32": np.uint32, "I64": np.int64, "U64": np.uint64,
           "F16": np.float16, "BF16": ml_dtypes.bfloat16, "F32": np.float32, "F64": np.float64,
           "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2}


def map_file(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of one safetensors file as a read-only view of a memory map."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HFFormatError(f"{path.name}: not a safetensors file ({e})") from None
    header.pop("__metadata__", None)
    start = 8 + header_len
    if path.stat().st_size == start:  # only empty tensors, or none: nothing to map
        return {name: np.zeros(info["shape"], _DTYPES.get(info["dtype"], np.uint8))
                for name, info in header.items()}
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=start)
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise HFFormatError(f"{path.name}: tensor {name!r} has dtype {info['dtype']}; only "
                                "float checkpoints are supported")
        begin, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]])
        shape = tuple(info["shape"])
        if end - begin != dtype.itemsize * int(np.prod(shape)) or end > data.size:
            raise HFFormatError(f"{path.name}: tensor {name!r} has inconsistent offsets")
        tensors[name] = np.ndarray(shape, dtype, buffer=data, offset=begin)
    return tensors


def map_folder(folder: Path) -> dict[str, np.ndarray]:
    """All tensors of a folder: `model.safetensors` (wins, as in transformers), else its index."""
    index = folder / INDEX_FILE
    if (folder / SINGLE_FILE).exists():
        files = [SINGLE_FILE]
    elif index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        pickled = sorted(p.name for pattern in PICKLE_PATTERNS for p in folder.glob(pattern))
        hint = (f" (found {', '.join(pickled)}: pickle files are never loaded, only "
                "safetensors are read; convert them to safetensors)") if pickled else ""
        raise HFFormatError(f"{folder}: no {SINGLE_FILE} or {INDEX_FILE}{hint}")
    tensors: dict[str, np.ndarray] = {}
    for name in files:
        if not (folder / name).exists():
            raise HFFormatError(f"{folder}: {INDEX_FILE} lists {name}, which is missing")
        tensors.update(map_file(folder / name))
    return tensors


def write_folder(folder: Path, tensors: dict[str, np.ndarray], *,
                 max_shard_bytes: int | None = None) -> None:
    """Write `model.safetensors`, or shards plus index with `max_shard_bytes`, replacing any
    earlier export as a set (transformers reads model.safetensors before an index)."""
    for old in [folder / SINGLE_FILE, folder / INDEX_FILE,
                *folder.glob("model-*-of-*.safetensors")]:
        old.unlink(missing_ok=True)
    metadata = {"format": "pt"}  # transformers expects this key in safetensors headers
    total = sum(t.nbytes for t in tensors.values())
    if not max_shard_bytes or total <= max_shard_bytes:
        save_file(tensors, str(folder / SINGLE_FILE), metadata=metadata)
        return
    shards: list[dict[str, np.ndarray]] = []
    current: dict[str, np.ndarray] = {}
    size = 0
    for name, tensor in tensors.items():
        if current and size + tensor.nbytes > max_shard_bytes:
            shards.append(current)
            current, size = {}, 0
        current[name] = tensor
        size += tensor.nbytes
    shards.append(current)
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata=metadata)
        weight_map.update(dict.fromkeys(shard, name))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
