"""`llm-jax serve` under load: 32 concurrent streaming clients vs the same requests one at a
time; prints one JSON line per figure.

    python bench/serve_throughput.py [--clients 32] [--max-tokens 64] [--hf FOLDER]

Model: a Hub folder given with --hf, else `preset("tiny")` (4 layers, d=256, 4 heads, GPT-2
flavour, max_seq_len 512) with random weights and a 4096-token tokenizer trained on the test
corpus, written to a temporary folder. The server runs in this process (uvicorn in a thread,
every row bucket compiled at start); clients stream `/v1/completions` over HTTP at
temperature 1 (with random weights a stop token is rare, so rows run to max_tokens).

Figures: new-token rate (completion tokens / wall seconds) one request at a time and with all
clients at once, their ratio, and the time to first token (request sent → first content
chunk) at p50 and p90 for both. Warm-up rounds of both run first, until they compile nothing
new; `compiles_while_timed` says whether a timed run still met a new shape.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ("It", "She", "Catherine", "Henry", "The morning", "Her mother", "Mrs. Allen", "Bath",
         "A letter", "The abbey", "John Thorpe", "Isabella", "Eleanor", "The General",
         "The carriage", "Their walk")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def tiny_folder(out: Path) -> Path:
    """Random `preset("tiny")` weights and a 4096-token tokenizer, as `llm-jax export` writes."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    from llm_jax.data.tokenizer import TOKENIZER_FILE, Tokenizer
    from llm_jax.models.config import ModelConfig
    from llm_jax.models.hf_io import save_hf_checkpoint
    from llm_jax.models.presets import preset
    from llm_jax.models.transformer import Transformer

    out.mkdir(parents=True, exist_ok=True)
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests/corpus").glob("*.txt"))]
    tokenizer = Tokenizer.train(texts, 4096, out / TOKENIZER_FILE)
    cfg = ModelConfig(**(preset("tiny") | {"vocab_size": tokenizer.vocab_size,
                                           "max_seq_len": 512}))
    model = Transformer(cfg)
    params = nn.meta.unbox(jax.jit(lambda r: model.init(r, jnp.zeros((1, 8), jnp.int32)))(
        jax.random.PRNGKey(0))["params"])
    save_hf_checkpoint(cfg, jax.device_get(params), out)
    return out


def stream_one(client: httpx.Client, url: str, body: dict) -> tuple[float, int]:
    """(seconds to the first content chunk, completion tokens) of one streamed request."""
    start, first, tokens = time.perf_counter(), None, 0
    with client.stream("POST", url + "/v1/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if first is None and chunk["choices"] and chunk["choices"][0]["text"]:
                first = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return (first if first is not None else time.perf_counter() - start), tokens


def one_at_a_time(url: str, bodies: list[dict]) -> tuple[float, list[float], int]:
    start, ttfts, tokens = time.perf_counter(), [], 0
    for body in bodies:
        with httpx.Client(timeout=600) as client:  # a new client per request, as concurrently
            ttft, n = stream_one(client, url, body)
        ttfts.append(ttft)
        tokens += n
    return time.perf_counter() - start, ttfts, tokens


def all_at_once(url: str, bodies: list[dict]) -> tuple[float, list[float], int]:
    results: list[tuple[float, int] | None] = [None] * len(bodies)
    gate = threading.Barrier(len(bodies) + 1)

    def client(i: int) -> None:
        with httpx.Client(timeout=600) as http:  # made before the start: not timed
            gate.wait()
            results[i] = stream_one(http, url, bodies[i])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    gate.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return seconds, [r[0] for r in results], sum(r[1] for r in results)


def figure(name: str, seconds: float, ttfts: list[float], tokens: int, clients: int,
           **extra) -> dict:
    qs = statistics.quantiles(ttfts, n=10) if len(ttfts) > 1 else ttfts * 9
    return {"figure": name, "clients": clients, "requests": len(ttfts),
            "completion_tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds, 1),
            "ttft_p50_s": round(statistics.median(ttfts), 3), "ttft_p90_s": round(qs[8], 3),
            **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--wait-ms", type=float, default=10.0)
    parser.add_argument("--hf", help="serve this Hub folder instead of the random tiny model")
    args = parser.parse_args()

    import uvicorn

    from llm_jax.commands.serve import load_served
    from llm_jax.serve.app import create_app
    from llm_jax.serve.batcher import BatchConfig
    from tests.serve.conftest import free_port

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.hf) if args.hf else tiny_folder(Path(tmp) / "tiny")
        served, batcher, keys = load_served(hf=str(folder), batch=BatchConfig(
            max_batch=args.clients, wait_ms=args.wait_ms))
        # How many requests the first batch gets depends on arrival timing: compile every row
        # bucket for these prompts' lengths (2-6 tokens) up front.
        for prompt_len in (4, 8):
            batcher.warm(keys[:1], args.max_tokens, prompt_len=prompt_len)
        batcher.start()
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(served, batcher), host="127.0.0.1",
                                               port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        bodies = [{"model": served.name, "prompt": f"{WORDS[i % len(WORDS)]} was", "stream": True,
                   "max_tokens": args.max_tokens, "temperature": 1.0, "seed": None,
                   "stream_options": {"include_usage": True}} for i in range(args.clients)]
        sampler = batcher.sampler
        for _ in range(4):  # warm-up rounds until this load makes no new shapes (compiles)
            traces = sampler.trace_count
            all_at_once(url, bodies)
            one_at_a_time(url, bodies[:len(WORDS)])
            if sampler.trace_count == traces:
                break
        traces = sampler.trace_count
        sequential = figure("serve_one_at_a_time", *one_at_a_time(url, bodies), clients=1,
                            compiles_while_timed=sampler.trace_count - traces)
        traces = sampler.trace_count
        before = dict(batcher.metrics.batch_sizes)
        concurrent = figure(f"serve_{args.clients}_concurrent", *all_at_once(url, bodies),
                            clients=args.clients)
        concurrent["compiles_while_timed"] = sampler.trace_count - traces
        concurrent["batch_sizes"] = {str(k): v - before.get(k, 0) for k, v in
                                     sorted(batcher.metrics.batch_sizes.items())
                                     if v > before.get(k, 0)}
        server.should_exit = True
        batcher.stop()
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "max_tokens": args.max_tokens}
    for row in (sequential, concurrent):
        print(json.dumps(row | machine), flush=True)
    print(json.dumps({"figure": "serve_concurrency_speedup",
                      "ratio": round(concurrent["tokens_per_s"] / sequential["tokens_per_s"], 2),
                      "target": 5.0, **machine}), flush=True)
    print(json.dumps({"figure": "serve_ttft_p50_under_load_s", "value": concurrent["ttft_p50_s"],
                      "target": 0.5, **machine}), flush=True)


if __name__ == "__main__":
    main()
