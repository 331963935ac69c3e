"""Training throughput (tokens/s) of the tiny GPT shape; prints one JSON line per figure.

    python bench/train_throughput.py [--steps 20] [--torch] [--shape gpt2_124m --dtype bfloat16]

Shapes: `tiny` (4 layers, d=256, 4 heads, vocab 4096, batch 8, seq 256: the shape of the
PyTorch-eager peer figure in the stack notes) and `gpt2_124m` (12 layers, d=768, vocab 50304,
batch 16, seq 1024: an accelerator's shape). `--torch` also times a PyTorch eager GPT of the
same shape in the same process, on the same device (bf16 autocast with `--dtype bfloat16`).
On a GPU, MFU is printed too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from llm_jax.losses.lm import make_lm_loss
from llm_jax.models.config import ModelConfig
from llm_jax.models.presets import preset
from llm_jax.models.transformer import Transformer
from llm_jax.sharding.mesh import batch_sharding, make_mesh
from llm_jax.sharding.rules import rules
from llm_jax.train.flops import peak_flops_per_device
from llm_jax.train.init import init_train_state
from llm_jax.train.optim import OptimConfig, make_optimizer
from llm_jax.train.step import jit_train_step, make_train_step

# (preset, batch, seq, vocab) of each benchmark shape
SHAPES = {"tiny": ("tiny", 8, 256, 4096), "gpt2_124m": ("gpt2_124m", 16, 1024, 50304)}


def bench_jax(steps: int, dtype: str, shape: str) -> dict:
    name, batch_size, seq_len, vocab = SHAPES[shape]
    cfg = ModelConfig(vocab_size=vocab, **(preset(name) | {"dtype": dtype, "max_seq_len": seq_len}))
    model = Transformer(cfg)
    mesh = make_mesh({"data": -1})
    rule_set = rules("dp")
    optimizer, schedule = make_optimizer(OptimConfig(warmup_steps=10), 1000)
    with jax.set_mesh(mesh):
        state, shardings = init_train_state(
            lambda r: model.init(r, jnp.zeros((1, seq_len), jnp.int32))["params"], optimizer,
            jax.random.PRNGKey(0), mesh, rule_set)
        loss = make_lm_loss(lambda p, t, pos, seg: model.apply({"params": p}, t, pos, seg))
        step = jit_train_step(make_train_step(loss, optimizer, lr_schedule=schedule), shardings,
                              batch_sharding(mesh))
        rng = np.random.default_rng(0)
        batch = {
            "inputs": rng.integers(0, vocab, (batch_size, seq_len)).astype(np.int32),
            "targets": rng.integers(0, vocab, (batch_size, seq_len)).astype(np.int32),
            "segment_ids": np.ones((batch_size, seq_len), np.int32),
            "positions": np.tile(np.arange(seq_len, dtype=np.int32), (batch_size, 1)),
        }
        batch = jax.device_put(batch, batch_sharding(mesh))
        for _ in range(3):  # compile + warm up
            state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            state, metrics = step(state, batch)
            jax.block_until_ready(metrics["loss"])
            times.append(time.perf_counter() - t0)
    step_time = statistics.median(times)
    tokens_per_s = batch_size * seq_len / step_time
    out = {"figure": "train_tokens_per_s", "impl": "llm-jax", "value": round(tokens_per_s, 1),
           "step_ms": round(step_time * 1e3, 2), "device": jax.devices()[0].device_kind,
           "n_devices": jax.device_count(), "dtype": dtype, "shape": shape,
           "params": cfg.num_params()}
    peak = peak_flops_per_device(jax.devices()[0].device_kind)
    if peak:
        flops = cfg.flops_per_token(seq_len) * tokens_per_s
        out["mfu"] = round(flops / (peak * jax.device_count()), 4)
    return out


def bench_torch(steps: int, dtype: str, shape: str) -> dict:
    """A nanoGPT-style PyTorch eager GPT of the same shape, trained with AdamW."""
    import torch
    from torch import nn

    name, batch_size, seq_len, vocab = SHAPES[shape]
    dims = preset(name)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    class Block(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            self.h = h

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.out(nn.functional.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self, d, n_layers, h):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(seq_len, d)
            self.blocks = nn.ModuleList(Block(d, h) for _ in range(n_layers))
            self.ln_f = nn.LayerNorm(d)

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
            for block in self.blocks:
                x = block(x)
            return self.ln_f(x) @ self.wte.weight.T

    torch.manual_seed(0)
    model = GPT(dims["d_model"], dims["n_layers"], dims["n_heads"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    x = torch.randint(0, vocab, (batch_size, seq_len), device=device)
    y = torch.randint(0, vocab, (batch_size, seq_len), device=device)
    autocast = torch.autocast(device, torch.bfloat16, enabled=dtype == "bfloat16")
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        with autocast:
            logits = model(x)
        loss = nn.functional.cross_entropy(logits.float().view(-1, vocab), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    step_time = statistics.median(times)
    return {"figure": "train_tokens_per_s", "impl": "pytorch-eager", "value":
            round(batch_size * seq_len / step_time, 1), "step_ms": round(step_time * 1e3, 2),
            "torch": torch.__version__, "device": device, "dtype": dtype, "shape": shape,
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch peer")
    args = parser.parse_args()
    ours = bench_jax(args.steps, args.dtype, args.shape)
    print(json.dumps(ours), flush=True)
    if args.torch:
        peer = bench_torch(args.steps, args.dtype, args.shape)
        print(json.dumps(peer), flush=True)
        print(json.dumps({"figure": "train_speedup_vs_pytorch", "value":
                          round(ours["value"] / peer["value"], 3)}), flush=True)


if __name__ == "__main__":
    main()
