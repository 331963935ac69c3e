"""`llm-jax serve`: an OpenAI-compatible server (and a chat page) for a run or a Hub folder.

    llm-jax serve runs/sft_tiny/default                 # http://127.0.0.1:8000/ (chat page)
    llm-jax serve --hf exported/ --port 8080 --max-batch 16 --batch-wait-ms 5
    llm-jax serve runs/sft_tiny/default --search index/  # search calls answered too

Requests arriving together are batched into one sampler call (see llm_jax/serve/batcher.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from llm_jax.errors import ConfigError

log = logging.getLogger(__name__)


def load_served(run_dir: str | None = None, hf: str | None = None, *, name: str | None = None,
                tokenizer: str | None = None, batch=None, max_n: int = 8,
                default_max_tokens: int = 256, tool_settings: dict | None = None):
    """(ServedModel, Batcher, warm keys) for a run directory or a Hub folder; not started."""
    from llm_jax.checkpoints.sources import load_model
    from llm_jax.commands.models import chat_template
    from llm_jax.data.chat import OurTemplate
    from llm_jax.generate.tools import make_tools
    from llm_jax.serve.app import ServedModel
    from llm_jax.serve.batcher import BatchConfig, Batcher, GroupKey

    if not hf and not run_dir:
        raise ConfigError("give a RUN_DIR or --hf DIR")
    model, params, tok, _ = load_model(run_dir, hf, tokenizer_path=tokenizer)
    template = chat_template(run_dir, hf)
    ours = hasattr(tok, "special_id")  # our tokenizer has the chat and tool tokens
    if template is None and ours:
        template = OurTemplate()  # a base model still answers chat requests in our format
    tools = None
    if ours and isinstance(template, OurTemplate):
        # the calculator, and search when `tool_settings` name an index (tools.search.*)
        try:
            tools = make_tools(tok, tool_settings)
        except KeyError:
            tools = None
    folder = Path(hf or run_dir).resolve()
    # A run is named like its directory under runs/ (experiment/run-name), a Hub folder by name.
    default_name = folder.name if hf else f"{folder.parent.name}/{folder.name}"
    served = ServedModel(name=name or default_name, tokenizer=tok,
                         max_seq_len=model.cfg.max_seq_len, template=template, tools=tools,
                         max_n=max_n, default_max_tokens=default_max_tokens)
    batcher = Batcher(model, params, tok, batch or BatchConfig(), tools=tools)
    # The API's default sampling settings, for chat (with its stops and tools) and completions.
    keys = [GroupKey(1.0, 1.0, served.text_stops(), False)]
    if template is not None:
        keys.append(GroupKey(1.0, 1.0, served.chat_stops(), tools is not None))
    return served, batcher, keys


def cmd_serve(args, overrides) -> int:
    import time

    import uvicorn

    from llm_jax.serve.app import create_app
    from llm_jax.serve.batcher import BatchConfig

    for flag, value in (("--port", args.port), ("--max-batch", args.max_batch),
                        ("--max-tokens", args.max_tokens), ("--max-n", args.max_n)):
        if value < (0 if flag == "--port" else 1):
            raise ConfigError(f"{flag}={value} must be positive")
    if args.batch_wait_ms < 0:
        raise ConfigError(f"--batch-wait-ms={args.batch_wait_ms} must be >= 0")
    batch = BatchConfig(max_batch=args.max_batch, wait_ms=args.batch_wait_ms)
    from llm_jax.commands.models import tool_settings

    served, batcher, keys = load_served(args.run_dir, args.hf, name=args.name,
                                        tokenizer=args.tokenizer, batch=batch,
                                        max_n=args.max_n, default_max_tokens=args.max_tokens,
                                        tool_settings=tool_settings(args))
    if not args.no_warm:
        # Shapes of a first chat message with default settings at every row bucket (the page,
        # chat clients), and of a short completion at one row and a full batch.
        started, context = time.perf_counter(), served.max_seq_len
        hello = 8
        if served.template is not None:
            hello = len(served.template.render_for_generation(
                [{"role": "user", "content": "Hello! Who are you?"}], served.tokenizer))
        batcher.warm(keys[-1:], min(args.max_tokens, context - hello), prompt_len=hello)
        batcher.warm(keys[:-1], min(args.max_tokens, context - 8),
                     rows=sorted({1, batch.max_batch}))
        log.info("compiled the sampler for rows %s in %.1f s",
                 ", ".join(map(str, batcher.row_buckets())), time.perf_counter() - started)
    batcher.start()
    log.info("serving %s on http://%s:%d/ (OpenAI API under /v1)", served.name, args.host,
             args.port)
    try:
        uvicorn.run(create_app(served, batcher), host=args.host, port=args.port,
                    log_level="warning")
    finally:
        batcher.stop()
    return 0


def add_commands(sub) -> None:
    serve = sub.add_parser("serve", help="serve a model over the OpenAI API, with a chat page")
    serve.add_argument("run_dir", nargs="?", help="a training run directory")
    serve.add_argument("--hf", help="a Hugging Face folder (config.json + safetensors) instead")
    serve.add_argument("--tokenizer", help="sentencepiece .model for --hf")
    serve.add_argument("--search", metavar="INDEX", help="answer `search:` calls from this "
                       "index (`llm-jax index`; default: the run's tools.search.index)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--name", help="the model id clients ask for (default: EXPERIMENT/RUN "
                       "for a run directory, the folder's name for --hf)")
    serve.add_argument("--max-batch", type=int, default=32,
                       help="most rows (requests × n) in one sampler call")
    serve.add_argument("--batch-wait-ms", type=float, default=10.0,
                       help="how long a request waits for others to share its batch")
    serve.add_argument("--max-tokens", type=int, default=256,
                       help="new tokens when a request does not say (capped by the context)")
    serve.add_argument("--max-n", type=int, default=8, help="largest n a request may ask for")
    serve.add_argument("--no-warm", action="store_true",
                       help="skip compiling the sampler at start (first requests compile)")
    serve.set_defaults(func=cmd_serve, accepts_overrides=False)
