"""`llm-jax serve` as a user starts it: a process answering on its port, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from llm_jax.cli import main
from tests.serve.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_serve_without_a_model_is_one_line(capsys):
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "llm-jax: config error: give a RUN_DIR or --hf DIR"


def test_bad_batch_flag_is_one_line(capsys, tiny_hf_folder):
    assert main(["serve", "--hf", str(tiny_hf_folder), "--max-batch", "0"]) == 2
    assert "--max-batch=0" in capsys.readouterr().err


def test_the_command_serves_the_page_and_the_api(tiny_hf_folder):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_jax.cli", "serve", "--hf", str(tiny_hf_folder), "--port",
         str(port), "--name", "tiny", "--no-warm"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert [m["id"] for m in models["data"]] == ["tiny"]
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "/v1/chat/completions" in page.text
        assert "http://" not in page.text and "https://" not in page.text, \
            "the page must fetch nothing from elsewhere"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_run_served_with_an_index_answers_search_calls(tiny_pretrained_run, test_corpus,
                                                         tmp_path):
    from llm_jax.commands.serve import load_served
    from llm_jax.generate.search import build_search_index

    build_search_index([str(test_corpus / "emma.txt")], tmp_path / "ix")
    served, _, _ = load_served(str(tiny_pretrained_run),
                               tool_settings={"search": {"index": str(tmp_path / "ix")}})
    answer = served.tools.toolbox.run("search: Emma knows I never flatter her")
    assert answer.startswith("Emma, CHAPTER I: ") and "flatter" in answer
    assert served.tools.toolbox.run("37 * 48") == "1776"
    plain, _, _ = load_served(str(tiny_pretrained_run))  # no index: the calculator only
    assert plain.tools.toolbox.run("search: Emma") == "error"
