"""Records: one reader for every format; validators; one-line errors for damaged files."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm_jax.data.errors import DataError
from llm_jax.data.records import BadRecordStats, read_records, text_field


def _problem(record):
    if not isinstance(record.get("question"), str):
        raise ValueError("field 'question' must be text")
    if record.get("skip"):
        return None
    return (record["question"], record.get("answer"))


def test_every_format_yields_dicts(tmp_path):
    (tmp_path / "a.txt").write_text("plain text")
    (tmp_path / "b.jsonl").write_text('{"q": 1, "nested": {"x": [1, 2]}}\n\n{"q": 2}\n')
    pq.write_table(pa.table({"text": ["p0", "p1"], "n": [0, 1]}), tmp_path / "c.parquet")
    records = list(read_records([str(tmp_path)]))
    assert records == [{"text": "plain text"}, {"q": 1, "nested": {"x": [1, 2]}}, {"q": 2},
                       {"text": "p0", "n": 0}, {"text": "p1", "n": 1}]
    assert list(read_records([str(tmp_path / "c.parquet")], columns=("n",))) == [
        {"n": 0}, {"n": 1}]


def test_validator_converts_drops_and_names_the_line(tmp_path):
    path = tmp_path / "math.jsonl"
    rows = [{"question": "1+1", "answer": "2"}, {"question": "x", "skip": True},
            {"question": 7}, {"question": "2+2", "answer": "4"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"^\S*math.jsonl:3: field 'question' must be text$"):
        list(read_records([str(path)], validate=_problem))
    stats = BadRecordStats()
    got = list(read_records([str(path)], validate=_problem, skip_bad=True, stats=stats))
    assert got == [("1+1", "2"), ("2+2", "4")]  # the dropped record is not counted as bad
    assert stats.count == 1 and "math.jsonl:3:" in stats.examples[0]


def test_parquet_errors_name_the_row(tmp_path):
    pq.write_table(pa.table({"text": ["fine", None, "  ", "ok"]}), tmp_path / "d.parquet")
    stats = BadRecordStats()
    assert list(read_records([str(tmp_path / "d.parquet")], validate=text_field(),
                             skip_bad=True, stats=stats)) == ["fine", "ok"]
    # a blank document is dropped; a null one is a bad record, counted
    assert stats.count == 1 and "d.parquet: row 1: field 'text' is null" in stats.examples[0]
    with pytest.raises(DataError, match=r"d.parquet: row 1: field 'text' is null"):
        list(read_records([str(tmp_path / "d.parquet")], validate=text_field()))
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "e.parquet")
    with pytest.raises(DataError, match=r"e.parquet: row 0: field 'text' is int, not text"):
        list(read_records([str(tmp_path / "e.parquet")], validate=text_field()))


def test_null_jsonl_text_names_file_and_line_or_is_counted(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "ok"}\n{"text": null}\n{"text": "fine"}\n')
    with pytest.raises(DataError, match=r"docs.jsonl:2: field 'text' is null"):
        list(read_records([str(path)], validate=text_field()))
    stats = BadRecordStats()
    assert list(read_records([str(path)], validate=text_field(), skip_bad=True,
                             stats=stats)) == ["ok", "fine"]
    assert stats.count == 1 and "docs.jsonl:2:" in stats.examples[0]


def test_non_string_jsonl_field(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "ok"}\n{"text": ["a", "list"]}\n')
    with pytest.raises(DataError, match=r"docs.jsonl:2: field 'text' is list, not text"):
        list(read_records([str(path)], validate=text_field()))


def test_truncated_gzip_is_one_line_naming_file_and_line(tmp_path):
    path = tmp_path / "big.jsonl.gz"
    data = gzip.compress("".join(json.dumps({"text": f"document {i} " * 20}) + "\n"
                                 for i in range(2000)).encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        list(read_records([str(path)], validate=text_field()))
    message = str(err.value)
    assert "\n" not in message and "big.jsonl.gz: truncated or damaged compressed file" in message
    assert "read up to line" in message
    (tmp_path / "t.txt.gz").write_bytes(gzip.compress(data)[:200])
    with pytest.raises(DataError, match=r"t.txt.gz: truncated or damaged compressed file"):
        list(read_records([str(tmp_path / "t.txt.gz")]))
    (tmp_path / "notgz.jsonl.gz").write_bytes(b"plain, not gzip\n")
    with pytest.raises(DataError, match="notgz.jsonl.gz: truncated or damaged.*BadGzipFile"):
        list(read_records([str(tmp_path / "notgz.jsonl.gz")]))


def test_bad_utf8_and_bad_parquet(tmp_path):
    (tmp_path / "latin.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt: not UTF-8 text"):
        list(read_records([str(tmp_path / "latin.txt")]))
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(DataError, match=r"broken.parquet: cannot read Parquet"):
        list(read_records([str(tmp_path / "broken.parquet")]))
