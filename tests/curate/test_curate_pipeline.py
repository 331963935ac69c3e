"""One curation run end to end: dedup, counts that add up, the report, the Parquet output."""

import json
import re

import pyarrow.parquet as pq

from llm_jax.curate.report import CHART_FILE, REPORT_FILE


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard_distance(x: str, y: str) -> float:
    a, b = shingles(x), shingles(y)
    return 1 - len(a & b) / len(a | b)


def output_texts(result) -> list[str]:
    files = sorted(result.plan.output_dir.glob("*.parquet"))
    assert files, "no Parquet written"
    return [t for f in files for t in pq.read_table(f).column("text").to_pylist()]


def test_exact_and_near_duplicates_removed_distinct_kept(curated):
    result, docs = curated
    ids = ["a", "b", "d", "e", "a_copy", "b_near"]
    table = {(x, y): jaccard_distance(docs[x][0], docs[y][0]) for x in ids for y in ids if x < y}
    print("\nJaccard distance (word 5-grams):")
    for (x, y), dist in sorted(table.items()):
        print(f"  {x:>7} {y:>7}  {dist:.3f}")
    assert table[("a", "a_copy")] == 0.0
    assert 0.0 < table[("b", "b_near")] < 0.15  # near: one word changed, one sentence added
    distinct = [d for (x, y), d in table.items() if {x, y} not in ({"a", "a_copy"},
                                                                     {"b", "b_near"})]
    assert min(distinct) > 0.95

    texts = output_texts(result)
    rows = {r.label: r for r in result.rows}
    assert rows["exact_dedup"].removed == 1 and rows["minhash_dedup"].removed == 1
    # Each distinct document survives exactly once; of each duplicate pair, one survives.
    for key in ("a", "d", "e"):
        assert sum(t == docs[key][0] for t in texts) == 1, key
    assert sum(t in (docs["b"][0], docs["b_near"][0]) for t in texts) == 1
    assert sum(t.startswith(docs["c"][0][:200]) for t in texts) == 1
    assert len(texts) == 5


def test_counts_add_up_from_step_to_step(curated):
    result, docs = curated
    rows = result.rows
    assert [r.label for r in rows] == ["read", "url_filter", "language", "gopher_repetition",
                                       "gopher_quality", "c4", "fineweb", "exact_dedup",
                                       "minhash_dedup", "pii"]
    assert rows[0].docs_out == len(docs)
    assert rows[0].chars_out == sum(len(t) for t, _ in docs.values())
    for before, after in zip(rows, rows[1:]):
        assert after.docs_in == before.docs_out, (before.label, after.label)
        assert after.chars_in == before.chars_out, (before.label, after.label)
    assert sum(r.removed for r in rows) == rows[0].docs_out - rows[-1].docs_out == 5
    by = {r.label: r for r in rows}
    assert by["url_filter"].removed == 1 and by["language"].removed == 1
    # the one-line advert: Gopher's rules (repeated 3-grams or too few words) catch it
    assert sum(by[k].removed for k in ("gopher_repetition", "gopher_quality", "c4",
                                       "fineweb")) == 1
    assert by["pii"].docs_in == by["pii"].docs_out
    assert by["pii"].reasons == {"pii_email": 1, "pii_ip": 1, "pii_phone": 1}


def test_report_shows_counts_chart_and_removed_examples(curated):
    result, _ = curated
    report = (result.plan.run_dir / REPORT_FILE).read_text()
    assert "**10 documents read, 5 kept**" in report
    for r in result.rows:
        assert f"| {r.label} | {r.stage} | {r.docs_in:,} | {r.docs_out:,} |" in report
    assert (result.plan.run_dir / CHART_FILE).stat().st_size > 1000
    assert "### language (1 removed)" in report and "`language_de` https://de.example/" in report
    assert "### url_filter (1 removed)" in report and "www.spamsite.com" in report
    summary = json.loads((result.plan.run_dir / "summary.json").read_text())
    assert summary["documents_read"] == 10 and summary["documents_kept"] == 5
    assert summary["removed/minhash_dedup"] == 1


def test_pii_scrubbed_in_output(curated):
    result, docs = curated
    (c_out,) = [t for t in output_texts(result) if t.startswith(docs["c"][0][:200])]
    assert "catherine.morland@fullerton.org.uk" not in c_out and "7946" not in c_out
    assert "81.2.69.160" not in c_out
    prose_part = docs["c"][0].rsplit("\n", 1)[0]
    assert c_out.startswith(prose_part + "\n")  # the prose itself is untouched
    assert "Letters for the family may be sent to" in c_out and "before noon" in c_out


def test_output_parquet_feeds_the_pretraining_pipeline(curated, tmp_path):
    from configs import base
    from llm_jax.data.pipeline import train_iterator
    from llm_jax.data.tokenizer import Tokenizer
    from llm_jax.trainers.pretrain import documents, load_corpus

    result, _ = curated
    data = base.data(seq_len=64, batch_size=4, vocab_size=400)
    data.train_paths = (str(result.plan.output_dir),)
    train, val = load_corpus(data)
    texts = list(documents(train)) + list(documents(val))
    assert sorted(texts) == sorted(output_texts(result))
    tokenizer = Tokenizer.train(texts, 400, tmp_path / "tok.model")
    batch = next(iter(train_iterator(train, tokenizer, seq_len=64, batch_size=4, seed=0)))
    assert batch["inputs"].shape == (4, 64)
    decoded = tokenizer.decode([t for t in batch["inputs"][0] if t >= 6])
    assert any(decoded[:40] in t for t in texts)


def test_report_command_rewrites_the_report(curated, capsys):
    from llm_jax.cli import main

    result, _ = curated
    report = result.plan.run_dir / REPORT_FILE
    report.unlink()
    assert main(["data", "report", str(result.plan.run_dir)]) == 0
    assert "**10 documents read, 5 kept**" in report.read_text()
    assert str(report) in capsys.readouterr().out


def test_rerun_skips_finished_tasks_and_claims_no_throughput(curated):
    import ml_collections

    from llm_jax.curate.run import run_curation

    result, _ = curated  # rerun with the config the fixture ran, read back from its run dir
    config = ml_collections.ConfigDict(json.loads((result.plan.run_dir / "config.json")
                                                  .read_text()))
    again = run_curation(config, result.plan.run_dir)
    assert again.wall_s == 0.0
    assert [(r.label, r.docs_out) for r in again.rows] == \
        [(r.label, r.docs_out) for r in result.rows]
    assert "documents/s/core" not in (result.plan.run_dir / REPORT_FILE).read_text()
