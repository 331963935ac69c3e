"""Generation throughput (new tokens/s) of the one sampler; prints one JSON line per figure.

    python bench/generate_throughput.py [--repeats 5] [--peer]

Shape: the 4-layer, d=256, 4-head, vocab-4096 GPT-2 model, batch 8, a 1-token prompt, 256 new
tokens (no stop token, so all are generated), fp32. `--peer` also times transformers'
`GPT2LMHeadModel.generate` (KV cache, greedy) of the same shape in the same process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.generate.sampler import SamplingConfig, generate
from llm_jax.models.config import ModelConfig
from llm_jax.models.presets import preset
from llm_jax.models.transformer import Transformer

BATCH, NEW, VOCAB = 8, 256, 4096


def bench_ours(repeats: int, temperature: float) -> dict:
    cfg = ModelConfig(vocab_size=VOCAB, **(preset("tiny") | {"max_seq_len": 512}))
    model = Transformer(cfg)
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))
                           ["params"])
    sampling = SamplingConfig(max_new_tokens=NEW, temperature=temperature, prompt_bucket=1)
    prompts = [[1]] * BATCH
    generate(model, params, prompts, jax.random.PRNGKey(0), sampling)  # compile
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        out = generate(model, params, prompts, jax.random.PRNGKey(i), sampling)
        times.append(time.perf_counter() - t0)
        assert int(out.mask.sum()) == BATCH * NEW
    t = statistics.median(times)
    return {"figure": "generate_new_tokens_per_s", "impl": "llm-jax",
            "value": round(BATCH * NEW / t, 1), "seconds": round(t, 3),
            "temperature": temperature, "device": jax.devices()[0].device_kind}


def bench_peer(repeats: int) -> dict:
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=4, n_embd=256, n_head=4, vocab_size=VOCAB, n_positions=512)).eval()
    ids = torch.ones((BATCH, 1), dtype=torch.long)
    kwargs = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, use_cache=True,
                  pad_token_id=0, attention_mask=torch.ones_like(ids))
    with torch.no_grad():
        model.generate(ids, **kwargs)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.generate(ids, **kwargs)
            times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    return {"figure": "generate_new_tokens_per_s", "impl": "transformers-generate",
            "value": round(BATCH * NEW / t, 1), "seconds": round(t, 3),
            "transformers": transformers.__version__, "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peer", action="store_true")
    args = parser.parse_args()
    ours = bench_ours(args.repeats, temperature=0.0)
    print(json.dumps(ours), flush=True)
    print(json.dumps(bench_ours(args.repeats, temperature=1.0)), flush=True)
    if args.peer:
        peer = bench_peer(args.repeats)
        print(json.dumps(peer), flush=True)
        print(json.dumps({"figure": "generate_speedup_vs_transformers",
                          "value": round(ours["value"] / peer["value"], 2)}), flush=True)


if __name__ == "__main__":
    main()
