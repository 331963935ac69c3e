"""The probe stage: ask a chat model about its own training text, and write refusal data.

    llm-jax run experiments/probe_refusal_tiny.py      # probe -> SFT on the data -> probe again

A pipeline stage that trains nothing (`config.stage = "probe"`). It loads `init.from_run`,
makes questions from the text that model was pretrained on (`probe.corpus` overrides it),
samples `probe.samples` answers each and writes into its run directory (see `probe_to_dir`):
`probe.jsonl`, the per-question table; `refusal_sft.jsonl`, SFT conversations from the train
split (`eval/probe.py`); `metrics.json`. With `probe.build_index` it first indexes the same
corpus into `index/` and turns the search tool on (`tools.search.index`), so unknown
questions are answered with a search call. `probe.baseline` names an earlier `probe.jsonl`
(the model before) against whose labels refusals are scored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from llm_jax.errors import ConfigError, DataError, RunError

log = logging.getLogger(__name__)

INDEX_DIR = "index"
FIGURE = "probe.png"


def training_corpus(run_dir: str | Path) -> list[Path]:
    """The text files a run's model was pretrained on: the first ancestor with a pretraining
    config names them (`data.train_paths`), or it used the default corpus."""
    from llm_jax.checkpoints.sources import parent_of
    from llm_jax.data.corpus import default_corpus
    from llm_jax.data.records import expand_paths
    from llm_jax.runs import RunDir

    run: str | Path | None = run_dir
    while run is not None and RunDir(run).exists():
        config = RunDir(run).read_config()
        if config.get("stage", "pretrain") == "pretrain":
            paths = (config.get("data") or {}).get("train_paths") or ()
            return expand_paths(list(paths)) if paths else default_corpus()[0]
        parent = parent_of(run)
        run = parent["path"] if parent and parent.get("kind") == "run" else None
    raise DataError(f"{run_dir}: cannot tell which corpus the model was trained on "
                    "(no pretraining run among its parents); name it (--corpus, probe.corpus)")


def book_texts(paths: Sequence[str | Path]) -> dict[str, str]:
    """Book title (from the file name) -> the file's text, through the records reader."""
    from llm_jax.data.records import expand_paths
    from llm_jax.data.sources import read_documents
    from llm_jax.recipes.probes import book_title

    return {book_title(p): "\n".join(read_documents([str(p)]))
            for p in expand_paths([str(p) for p in paths])}


def read_table(path: str | Path) -> list[dict]:
    """A `probe.jsonl` written earlier (the baseline); a bad one is a DataError naming it."""
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line]
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a probe table ({type(e).__name__}: {e})") from None


def probe_to_dir(model, params, tokenizer, template, texts: dict[str, str], settings, out: Path,
                 *, per_kind: int, heldout_fraction: float, arithmetic: int = 0, tools=None,
                 baseline: list[dict] | None = None, search_practice: int = 0) -> dict:
    """Probe the model and write probe.jsonl, refusal_sft.jsonl and metrics.json into `out`;
    returns the metrics ({"train": {...}, "heldout": {...}, "counts": {...}}). With the
    search tool on, `search_practice` more train-split questions become search conversations
    (`recipes/probes.search_practice`)."""
    from llm_jax.eval.probe import (
        probe_metrics,
        probe_model,
        probe_table,
        refusal_conversations,
        search_conversation,
    )
    from llm_jax.generate.sampler import Sampler
    from llm_jax.recipes.probes import probe_questions
    from llm_jax.recipes.probes import search_practice as practice_questions

    questions = probe_questions(texts, per_kind=per_kind, heldout_fraction=heldout_fraction,
                                seed=settings.seed, arithmetic=arithmetic)
    if not questions:
        raise DataError(f"{', '.join(texts)}: no probe question can be made from this text")
    results = probe_model(Sampler(model), params, tokenizer, template, questions, settings,
                          tools)
    rows = probe_table(results, settings)
    search = tools.toolbox.named.get("search") if tools is not None else None
    conversations = refusal_conversations(results, settings, search=search)
    practice = practice_questions(texts, limit=search_practice, seed=settings.seed,
                                  heldout_fraction=heldout_fraction,
                                  exclude=[q.question for q in questions]) if search else []
    conversations += [search_conversation(q, search, settings.search_query) for q in practice]
    labels = [r["label"] for r in rows if r["split"] == "train"]
    metrics = {split: probe_metrics(rows, baseline, split) for split in ("train", "heldout")}
    metrics["counts"] = {"questions": len(rows), "conversations": len(conversations),
                         "search_practice": len(practice),
                         **{label: labels.count(label) for label in ("known", "unknown",
                                                                      "unsure")}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "refusal_sft.jsonl").write_text("".join(json.dumps({"messages": c}) + "\n"
                                                   for c in conversations))
    (out / "metrics.json").write_text(json.dumps(
        {"settings": dataclasses.asdict(settings), "search": search is not None, **metrics},
        indent=1) + "\n")
    return metrics


def settings_from_config(probe):
    """The `ProbeSettings` named in a config's `probe` section."""
    from llm_jax.recipes.probes import SEARCH_QUERIES, ProbeSettings

    fields = {f.name for f in dataclasses.fields(ProbeSettings)}
    settings = ProbeSettings(**{k: v for k, v in probe.items() if k in fields})
    if settings.search_query not in SEARCH_QUERIES:
        raise ConfigError(f"probe.search_query={settings.search_query!r} is not one of "
                          f"{', '.join(SEARCH_QUERIES)}")
    return settings


def main(config, run_dir: Path) -> dict[str, float]:
    from llm_jax.checkpoints.sources import load_model, run_chat_template
    from llm_jax.generate.search import build_search_index
    from llm_jax.generate.tools import make_tools
    from llm_jax.tracking.metrics_log import MetricsLog

    source, probe = config.init.from_run, config.probe
    if not source:
        raise RunError("init.from_run: the probe stage needs the chat model's run directory")
    model, params, tokenizer, _ = load_model(source)
    template = run_chat_template(source)
    if template is None:
        raise RunError(f"init.from_run={source}: a base model; probing asks a chat model")
    corpus = list(probe.corpus) or training_corpus(source)
    tools_settings = config.tools.to_dict()
    if probe.build_index:
        index = Path(run_dir) / INDEX_DIR
        count = build_search_index([str(p) for p in corpus], index)
        log.info("indexed %d passages into %s", count, index)
        tools_settings["search"]["index"] = str(index)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(
        {**config.to_dict(), "parent": {"kind": "run", "path": str(Path(source).absolute())}},
        indent=1, default=str) + "\n")
    metrics = probe_to_dir(
        model, params, tokenizer, template, book_texts(corpus), settings_from_config(probe),
        run_dir, per_kind=probe.per_kind, heldout_fraction=probe.heldout_fraction,
        arithmetic=probe.arithmetic, search_practice=probe.get("search_practice", 0),
        tools=make_tools(tokenizer, tools_settings),
        baseline=read_table(probe.baseline) if probe.baseline else None)
    flat = {f"probe/{split}/{k}": v for split in ("train", "heldout")
            for k, v in metrics[split].items()}
    metrics_log = MetricsLog(run_dir)  # for the report card and `llm-jax compare`
    metrics_log.truncate_after(-1)  # a stage run again replaces its row
    metrics_log.log(0, flat)
    for split in ("train", "heldout"):
        log.info("%s: %s", split, ", ".join(f"{k}={v:.3f}" for k, v in metrics[split].items()))
    if probe.baseline:  # the before/after figure on the held-out questions
        from llm_jax.eval.probe import probe_metrics
        from llm_jax.tracking.probe_figure import plot_probe

        before_rows = read_table(probe.baseline)
        search = bool(tools_settings["search"].get("index"))
        plot_probe(probe_metrics(before_rows, before_rows), metrics["heldout"],
                   run_dir / FIGURE, title=f"{run_dir.parent.name}/{run_dir.name}",
                   after_label="after, with search" if search else "after")
    return flat
