"""Generation throughput (new tokens/s) of the one sampler; prints one JSON line per figure.

    python bench/generate_throughput.py [--repeats 5] [--no-peer]

Shape: `preset("tiny")` (4 layers, d=256, 4 heads, GPT-2 flavour) with vocab 4096 and
max_seq_len 512 (the preset's 256 positions cannot hold 1 + 256 tokens), random init, fp32 on
CPU. Batch 8, a 1-token prompt, 256 new tokens with no stop token, so every row generates all
256. Each figure is the median of `--repeats` timed calls after a warm-up (compile) call.

When torch and transformers are importable the same run also times the peer,
`GPT2LMHeadModel.generate` of the same shape (KV cache, greedy, `min_new_tokens=256`), with
torch's default thread count and with one thread (on a shared 2-core machine OpenMP's second
thread often slows it down), and prints our speed-up over each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.generate import sampler
from llm_jax.models.config import ModelConfig
from llm_jax.models.presets import preset
from llm_jax.models.transformer import Transformer

BATCH, NEW, VOCAB, POSITIONS = 8, 256, 4096, 512


def _median_rate(fn, repeats: int) -> tuple[float, float]:
    """(new tokens/s, seconds) of the median of `repeats` timed calls of `fn`."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return BATCH * NEW / seconds, seconds


def bench_ours(repeats: int, temperature: float) -> dict:
    cfg = ModelConfig(vocab_size=VOCAB, **(preset("tiny") | {"max_seq_len": POSITIONS}))
    model = Transformer(cfg)
    params = nn.meta.unbox(jax.jit(lambda r: model.init(r, jnp.zeros((1, 8), jnp.int32)))(
        jax.random.PRNGKey(0))["params"])
    sampling = sampler.SamplingConfig(max_new_tokens=NEW, temperature=temperature)
    prompts = [[1]] * BATCH

    engine = sampler.Sampler(model)

    def run(seed: int):
        out = engine.generate(params, prompts, jax.random.PRNGKey(seed), sampling)
        assert int(out.mask.sum()) == BATCH * NEW  # no early stop: all tokens generated

    start = time.perf_counter()
    run(0)  # compile
    compile_s = time.perf_counter() - start
    rate, seconds = _median_rate(run, repeats)
    return {"figure": "generate_new_tokens_per_s", "impl": "llm-jax", "value": round(rate, 1),
            "seconds": round(seconds, 3), "first_call_seconds": round(compile_s, 2),
            "temperature": temperature, "batch": BATCH, "new_tokens": NEW,
            "decode_segments": len(sampler._segment_ends(NEW)),
            "device": jax.devices()[0].device_kind, "jax": jax.__version__}


def bench_peer(repeats: int, threads: int | None) -> dict | None:
    try:
        import torch
        import transformers
    except ImportError:
        return None
    default_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=4, n_embd=256, n_head=4, vocab_size=VOCAB, n_positions=POSITIONS,
            bos_token_id=0, eos_token_id=0)).eval()
        ids = torch.ones((BATCH, 1), dtype=torch.long)
        kwargs = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, use_cache=True,
                      pad_token_id=0, attention_mask=torch.ones_like(ids))
        with torch.no_grad():
            model.generate(ids, **kwargs)  # warm-up
            rate, seconds = _median_rate(lambda _: model.generate(ids, **kwargs), repeats)
    finally:
        torch.set_num_threads(default_threads)
    return {"figure": "generate_new_tokens_per_s", "impl": "transformers-generate",
            "value": round(rate, 1), "seconds": round(seconds, 3),
            "torch_threads": threads or default_threads, "batch": BATCH, "new_tokens": NEW,
            "transformers": transformers.__version__, "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-peer", action="store_true", help="skip transformers")
    args = parser.parse_args()
    ours = bench_ours(args.repeats, temperature=0.0)
    print(json.dumps(ours), flush=True)
    print(json.dumps(bench_ours(args.repeats, temperature=1.0)), flush=True)
    if args.no_peer:
        return
    for threads in (None, 1):
        peer = bench_peer(args.repeats, threads)
        if peer is None:
            print(json.dumps({"figure": "generate_peer", "skipped": "torch/transformers "
                              "not importable"}), flush=True)
            return
        print(json.dumps(peer), flush=True)
        print(json.dumps({"figure": "generate_speedup_vs_transformers",
                          "torch_threads": peer["torch_threads"],
                          "value": round(ours["value"] / peer["value"], 2)}), flush=True)


if __name__ == "__main__":
    main()
