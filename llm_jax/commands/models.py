"""`llm-jax sample`, `llm-jax chat` and `llm-jax export`: use a trained model.

    llm-jax sample runs/pretrain_tiny/default --prompt "It is a truth" -n 3 --temperature 0.8
    llm-jax sample --hf exported/ --prompt "In the beginning"
    llm-jax chat runs/pretrain_tiny/default
    llm-jax export runs/pretrain_tiny/default exported/     # a folder transformers can load
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import jax
import numpy as np

from llm_jax.data.tokenizer import TOKENIZER_FILE
from llm_jax.errors import ConfigError
from llm_jax.generate.sampler import Sampler, SamplingConfig
from llm_jax.load import load_model


def _load(args):
    if not args.hf and not args.run_dir:
        raise ConfigError("give a RUN_DIR or --hf DIR")
    model, params, tokenizer, _ = load_model(args.run_dir, args.hf,
                                             tokenizer_path=args.tokenizer)
    return model, params, tokenizer


def _sampling(args, tokenizer, n: int = 1) -> SamplingConfig:
    return SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                          top_k=args.top_k, top_p=args.top_p, n=n,
                          stop_tokens=tokenizer.stop_ids, pad_id=tokenizer.pad_id)


def _visible(tokenizer, ids, mask) -> str:
    stops = tokenizer.stop_ids
    return tokenizer.decode([int(t) for t, m in zip(ids, mask) if m and t not in stops])


def cmd_sample(args, overrides) -> int:
    model, params, tokenizer = _load(args)
    prompts = [[tokenizer.bos_id, *tokenizer.encode(p)] for p in args.prompt]
    rollout = Sampler(model).generate(params, prompts, jax.random.PRNGKey(args.seed),
                                      _sampling(args, tokenizer, args.n))
    for row in range(len(rollout.tokens)):
        prompt = args.prompt[int(rollout.prompt_index[row])]
        print(f"--- sample {row} ({int(rollout.lengths[row])} tokens)")
        print(prompt + _visible(tokenizer, rollout.tokens[row], rollout.mask[row]))
    return 0


def cmd_chat(args, overrides) -> int:
    """Interactive continuation: each line you type is appended to the transcript and the
    model's continuation streams back. (Conversation turns arrive with the chat template.)"""
    model, params, tokenizer = _load(args)
    cfg = _sampling(args, tokenizer)
    limit = model.cfg.max_seq_len - cfg.max_new_tokens
    transcript: list[int] = [tokenizer.bos_id]
    rng = jax.random.PRNGKey(args.seed)
    sampler = Sampler(model)
    print("llm-jax chat: type text and press enter; empty line or Ctrl-D quits.", flush=True)
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        if not line.strip():
            break
        transcript = transcript + tokenizer.encode(line + "\n")
        if len(transcript) > limit:  # keep the most recent context
            transcript = [tokenizer.bos_id, *transcript[-(limit - 1):]]
        emitted: list[int] = []

        def stream(step, ids, emitted=emitted):
            token = int(np.asarray(ids)[0])
            if token in tokenizer.stop_ids or token == tokenizer.pad_id:
                return
            before = tokenizer.decode(emitted)
            emitted.append(token)
            sys.stdout.write(tokenizer.decode(emitted)[len(before):])
            sys.stdout.flush()

        rng, key = jax.random.split(rng)
        rollout = sampler.generate(params, [transcript], key, cfg, on_token=stream)
        jax.effects_barrier()
        print(flush=True)
        n = int(rollout.lengths[0])
        transcript = transcript + [int(t) for t in rollout.tokens[0, :n]
                                   if t not in tokenizer.stop_ids]
    return 0


def cmd_export(args, overrides) -> int:
    import json

    from llm_jax.data.hf_tokenizer_export import HF_TOKENIZER_FILES, write_hf_tokenizer
    from llm_jax.data.tokenizer import Tokenizer
    from llm_jax.models.hf_io import save_hf_checkpoint

    model, params, tokenizer, step = load_model(args.run_dir)
    out = Path(args.out)
    save_hf_checkpoint(model.cfg, jax.device_get(params), out)
    if isinstance(tokenizer, Tokenizer):
        # Our sentencepiece model (what `llm-jax sample --hf` reads), and the same tokenizer
        # as the files `transformers.AutoTokenizer` reads, giving identical ids.
        shutil.copy(tokenizer.model_path, out / TOKENIZER_FILE)
        write_hf_tokenizer(tokenizer, out, model_max_length=model.cfg.max_seq_len)
    else:  # a run started from a Hub folder keeps that folder's own tokenizer files
        for name in HF_TOKENIZER_FILES:
            if (tokenizer.model_path.parent / name).is_file():
                shutil.copy(tokenizer.model_path.parent / name, out / name)
    # config.json leaves token ids null; transformers' generate reads them from here.
    stops = list(tokenizer.stop_ids)
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": tokenizer.bos_id, "eos_token_id": stops[0] if len(stops) == 1
         else stops, "pad_token_id": tokenizer.pad_id}, indent=2) + "\n")
    print(f"exported step {step} of {args.run_dir} to {args.out}")
    return 0


def _sampling_args(p: argparse.ArgumentParser, max_new: int) -> None:
    p.add_argument("run_dir", nargs="?", help="a training run directory")
    p.add_argument("--hf", help="a Hugging Face folder (config.json + safetensors) instead")
    p.add_argument("--tokenizer", help="sentencepiece .model for --hf (default: the folder's "
                   "tokenizer.json, else its tokenizer.model)")
    p.add_argument("--max-new-tokens", type=int, default=max_new)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=int(time.time()) % 2**31)


def add_commands(sub) -> None:
    sample = sub.add_parser("sample", help="sample continuations of prompts")
    _sampling_args(sample, 100)
    sample.add_argument("--prompt", action="append", required=True)
    sample.add_argument("-n", type=int, default=1, help="samples per prompt")
    sample.set_defaults(func=cmd_sample, accepts_overrides=False)
    chat = sub.add_parser("chat", help="talk to a model interactively (streams tokens)")
    _sampling_args(chat, 64)
    chat.set_defaults(func=cmd_chat, accepts_overrides=False)
    export = sub.add_parser("export", help="write a run's newest params as a HF folder")
    export.add_argument("run_dir")
    export.add_argument("out")
    export.set_defaults(func=cmd_export, accepts_overrides=False)
