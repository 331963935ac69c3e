"""A tiny random model as a Hub folder, served live on 127.0.0.1 by a uvicorn thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import random_params, tiny_config

VOCAB, CONTEXT = 384, 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_hf_folder(tmp_path_factory, austen_text) -> Path:
    """Our tokenizer + random GPT-2-flavour weights, written as `llm-jax export` writes them."""
    from llm_jax.data.tokenizer import TOKENIZER_FILE, Tokenizer
    from llm_jax.models.hf_io import save_hf_checkpoint

    folder = tmp_path_factory.mktemp("served") / "tiny-chat"
    folder.mkdir()
    Tokenizer.train([austen_text[:100_000]], VOCAB, folder / TOKENIZER_FILE)
    cfg = tiny_config("gpt2", vocab_size=VOCAB, max_seq_len=CONTEXT)
    _, params = random_params(cfg, seed=3)
    save_hf_checkpoint(cfg, params, folder)
    return folder


class LiveServer:
    """`create_app` under uvicorn in a background thread, stopped at the end."""

    def __init__(self, folder: Path, **batch):
        import uvicorn

        from llm_jax.commands.serve import load_served
        from llm_jax.serve.app import create_app
        from llm_jax.serve.batcher import BatchConfig

        self.served, self.batcher, _ = load_served(hf=str(folder),
                                                   batch=BatchConfig(**batch), max_n=4)
        self.batcher.start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(self.served, self.batcher), host="127.0.0.1",
                                port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.batcher.stop()


@pytest.fixture(scope="session")
def live_server(tiny_hf_folder):
    server = LiveServer(tiny_hf_folder, max_batch=16, wait_ms=50)
    yield server
    server.close()
