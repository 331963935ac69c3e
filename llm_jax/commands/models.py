"""`llm-jax sample`, `llm-jax chat` and `llm-jax export`: use a trained model.

    llm-jax sample runs/pretrain_tiny/default --prompt "It is a truth" -n 3 --temperature 0.8
    llm-jax chat runs/sft_tiny/default --search index/    # calculator and search calls
    llm-jax export runs/pretrain_tiny/default exported/     # a folder transformers can load"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

from llm_jax.data.tokenizer import TOKENIZER_FILE
from llm_jax.errors import ConfigError

# JAX and the model code are imported inside the commands: every `llm-jax` command builds its
# parser from this module, and most of them (data, index, tokenize, report) never need JAX.


def _load(args):
    from llm_jax.checkpoints.sources import load_model

    if not args.hf and not args.run_dir:
        raise ConfigError("give a RUN_DIR or --hf DIR")
    model, params, tokenizer, _ = load_model(args.run_dir, args.hf,
                                             tokenizer_path=args.tokenizer)
    return model, params, tokenizer


def _sampling(args, tokenizer, n: int = 1):
    from llm_jax.generate.sampler import SamplingConfig

    return SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                          top_k=args.top_k, top_p=args.top_p, n=n,
                          stop_tokens=tokenizer.stop_ids, pad_id=tokenizer.pad_id)


def _visible(tokenizer, ids, mask) -> str:
    stops = tokenizer.stop_ids
    return tokenizer.decode([int(t) for t, m in zip(ids, mask) if m and t not in stops])


def tool_settings(args) -> dict:
    """`tools.*` settings: the run's own (config.json), with `--search DIR` taking over."""
    settings: dict = {}
    if args.run_dir and not args.hf:
        from llm_jax.runs import RunDir

        settings = dict(RunDir(args.run_dir).read_config().get("tools") or {})
    if args.search:
        settings["search"] = {**(settings.get("search") or {}), "index": args.search}
    return settings


def cmd_sample(args, overrides) -> int:
    import jax
    import numpy as np

    from llm_jax.generate.sampler import Sampler
    from llm_jax.generate.tools import generate_with_tools, make_tools

    model, params, tokenizer = _load(args)
    prompts = [[tokenizer.bos_id, *tokenizer.encode(p)] for p in args.prompt]
    settings = tool_settings(args)
    cfg, key = _sampling(args, tokenizer, args.n), jax.random.PRNGKey(args.seed)
    tools = make_tools(tokenizer, settings) if (settings.get("search") or {}).get("index") \
        else None
    if tools is None:
        rollout = Sampler(model).generate(params, prompts, key, cfg)
    else:  # a search index is named: calls are answered, and their output shown
        rollout = generate_with_tools(Sampler(model), params, prompts, key, cfg, tokenizer,
                                      tools)
    for row in range(len(rollout.tokens)):
        prompt = args.prompt[int(rollout.prompt_index[row])]
        shown = rollout.mask[row] if tools is None else \
            np.arange(rollout.tokens.shape[1]) < rollout.lengths[row]
        print(f"--- sample {row} ({int(rollout.lengths[row])} tokens)")
        print(prompt + _visible(tokenizer, rollout.tokens[row], shown))
    return 0


class _Stream:
    """Prints row 0's tokens as they arrive, decoding incrementally (multi-byte safe)."""

    def __init__(self, tokenizer, hidden: tuple[int, ...]):
        self.tokenizer, self.hidden, self.emitted = tokenizer, set(hidden), []

    def __call__(self, step, ids) -> None:
        self.show(int(ids[0]))

    def show(self, token: int) -> None:
        if token in self.hidden:
            return
        before = self.tokenizer.decode(self.emitted)
        self.emitted.append(token)
        sys.stdout.write(self.tokenizer.decode(self.emitted)[len(before):])
        sys.stdout.flush()


def chat_template(run_dir: str | None, hf: str | None = None):
    """The template of a chat model (a run past pretraining, or a Hub folder that has one);
    None for a base model, which chat continues as plain text."""
    from llm_jax.checkpoints.sources import chat_template_for, run_chat_template

    if hf:
        template = chat_template_for(hf)
        return None if type(template).__name__ == "OurTemplate" else template
    return run_chat_template(run_dir)


def cmd_chat(args, overrides) -> int:
    """Talk to a model: a chat model through its template (calculator calls answered), a
    base model by continuing the transcript. Tokens stream as they are generated."""
    import jax

    from llm_jax.generate.sampler import Sampler
    from llm_jax.generate.tools import generate_with_tools, make_tools

    model, params, tokenizer = _load(args)
    template = chat_template(args.run_dir, args.hf)
    rng = jax.random.PRNGKey(args.seed)
    sampler = Sampler(model)
    print("llm-jax chat: type text and press enter; empty line or Ctrl-D quits.", flush=True)
    if template is None:
        return _continue_text(model, params, tokenizer, sampler, _sampling(args, tokenizer), rng)
    stops = tuple(template.stop_ids(tokenizer))
    cfg = dataclasses.replace(_sampling(args, tokenizer), stop_tokens=stops)
    tools = make_tools(tokenizer, tool_settings(args))
    messages: list[dict] = []
    while (line := _read_line()) is not None:
        messages.append({"role": "user", "content": line})
        prompt = template.render_for_generation(messages, tokenizer)
        while len(prompt) > model.cfg.max_seq_len - cfg.max_new_tokens and len(messages) > 1:
            messages = messages[2:]  # forget the oldest exchange
            prompt = template.render_for_generation(messages, tokenizer)
        stream = _Stream(tokenizer, (*stops, tokenizer.pad_id))
        rng, key = jax.random.split(rng)
        if tools is None:
            rollout = sampler.generate(params, [prompt], key, cfg, on_token=stream)
        else:
            def show_output(row, ids, stream=stream):
                for token in ids:
                    stream.show(int(token))

            rollout = generate_with_tools(sampler, params, [prompt], key, cfg, tokenizer, tools,
                                          on_token=stream, on_forced=show_output)
        print(flush=True)
        n = int(rollout.lengths[0])
        reply = tokenizer.decode([int(t) for t in rollout.tokens[0, :n] if int(t) not in stops])
        messages.append({"role": "assistant", "content": reply})
    return 0


def _read_line() -> str | None:
    try:
        line = input("> ")
    except EOFError:
        return None
    return line if line.strip() else None


def _continue_text(model, params, tokenizer, sampler, cfg, rng) -> int:
    import jax

    limit = model.cfg.max_seq_len - cfg.max_new_tokens
    transcript: list[int] = [tokenizer.bos_id]
    while (line := _read_line()) is not None:
        transcript = transcript + tokenizer.encode(line + "\n")
        if len(transcript) > limit:  # keep the most recent context
            transcript = [tokenizer.bos_id, *transcript[-(limit - 1):]]
        rng, key = jax.random.split(rng)
        rollout = sampler.generate(params, [transcript], key, cfg,
                                   on_token=_Stream(tokenizer, (*tokenizer.stop_ids,
                                                                tokenizer.pad_id)))
        print(flush=True)
        n = int(rollout.lengths[0])
        transcript = transcript + [int(t) for t in rollout.tokens[0, :n]
                                   if t not in tokenizer.stop_ids]
    return 0


def cmd_export(args, overrides) -> int:
    import json

    import jax

    from llm_jax.checkpoints.sources import load_model
    from llm_jax.data.hf_tokenizer_export import HF_TOKENIZER_FILES, write_hf_tokenizer
    from llm_jax.data.tokenizer import Tokenizer
    from llm_jax.models.hf_io import save_hf_checkpoint

    # A LoRA run loads as its parent's weights with the adapters merged in.
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
    p.add_argument("--search", metavar="INDEX", help="answer `search:` calls from this index "
                   "(`llm-jax index`; default: the run's tools.search.index)")


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
