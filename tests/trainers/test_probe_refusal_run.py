"""probe_refusal_tiny end to end at toy size: probe a chat model, 2 SFT steps on the refusal
data, probe again against the first labels; and the `:search` variant with its index."""

import json
from pathlib import Path

import pytest

from llm_jax.cli import main
from llm_jax.generate.search import SearchIndex

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory, tiny_pretrained_run):
    """2 SFT steps on the shared 4-step pretraining run: a (poor) chat model."""
    out = tmp_path_factory.mktemp("chat") / "sft"
    assert main(["train", str(ROOT / "experiments/sft_tiny.py"), "--workdir", str(out),
                 f"--config.init.from_run={tiny_pretrained_run}", "--config.data.seq_len=64",
                 "--config.train.steps=2", "--config.train.eval_every=0",
                 "--config.train.eval_at_start=false", "--config.train.eval_batches=1",
                 "--config.wandb.mode=offline", "--config.sft.mixture_size=40",
                 "--config.sft.eval_size=3", "--config.sft.eval_math=2",
                 "--config.evals.chat.max_new_tokens=4"]) == 0
    return out


def _pipeline_args(chat_run, test_corpus, workdir, variant=""):
    # The Bible excerpt (short verse questions: the model's context is 64 tokens) and a few
    # arithmetic questions; 2 answers of 6 tokens each, 2 SFT steps.
    return ["run", str(ROOT / f"experiments/probe_refusal_tiny.py{variant}"),
            "--workdir", str(workdir),
            f"--stage.before.init.from_run={chat_run}", f"--stage.sft.init.from_run={chat_run}",
            f"--config.probe.corpus=('{test_corpus / 'kjv.txt'}',)", "--config.probe.per_kind=6",
            "--config.probe.arithmetic=6", "--config.probe.samples=2",
            "--config.probe.max_new_tokens=6", "--config.probe.unknown_at=0.5",
            "--config.wandb.mode=offline", "--stage.sft.train.steps=2",
            "--stage.sft.data.seq_len=64", "--stage.sft.train.eval_batches=1",
            "--stage.sft.evals.chat.max_new_tokens=4", "--config.tools.search.max_chars=30",
            # a few conversations of the built-in mixture replayed among the probe's
            "--stage.sft.sft.replay=12"]


def _metrics(stage_dir: Path) -> dict:
    return json.loads((stage_dir / "metrics.json").read_text())


def test_probe_refusal_two_steps(chat_run, test_corpus, tmp_path):
    workdir = tmp_path / "probe"
    assert main(_pipeline_args(chat_run, test_corpus, workdir)) == 0
    before, after = workdir / "01-before", workdir / "03-after"
    rows = [json.loads(x) for x in (before / "probe.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in rows} == {"verse", "arithmetic"} and len(rows) == 12
    chats = [json.loads(x)["messages"] for x in
             (before / "refusal_sft.jsonl").read_text().splitlines()]
    unknown = [r["question"] for r in rows if r["split"] == "train" and r["label"] == "unknown"]
    assert [c[0]["content"] for c in chats if c[1]["content"] == "I don't know."] == unknown
    assert (workdir / "02-sft" / "done.json").is_file()
    sft_config = json.loads((workdir / "02-sft" / "config.json").read_text())
    assert sft_config["sft"]["replay"] == 12
    m = _metrics(after)["heldout"]
    assert {"accuracy", "refusal_on_unknown", "false_refusal_on_known"} <= set(m)
    assert (after / "probe.png").stat().st_size > 1000


def test_probe_refusal_search_variant_two_steps(chat_run, test_corpus, tmp_path):
    workdir = tmp_path / "probe_search"
    assert main(_pipeline_args(chat_run, test_corpus, workdir, ":search")) == 0
    before = workdir / "01-before"
    assert (before / "index" / "corpus.jsonl").is_file() and _metrics(before)["search"]
    chats = [json.loads(x)["messages"] for x in
             (before / "refusal_sft.jsonl").read_text().splitlines()]
    searched = [c for c in chats if isinstance(c[1]["content"], list)]
    index = SearchIndex.load(before / "index", max_chars=30)
    assert searched
    for user, assistant in searched:  # `search:` (the question is the query), its passage,
        call, output, answer = assistant["content"]  # and the answer or "I don't know."
        assert call == {"type": "python", "text": "search:"}
        assert output == {"type": "output", "text": index(user["content"])}
        assert answer["type"] == "text" and answer["text"]
    # Arithmetic has nothing to search for: it is refused as before.
    refused = [c[0]["content"] for c in chats if c[1]["content"] == "I don't know."]
    assert all("first words" not in q for q in refused)
    assert _metrics(workdir / "03-after")["search"]
    sft_config = json.loads((workdir / "02-sft" / "config.json").read_text())
    assert sft_config["tools"]["search"]["index"] == str(before / "index")
