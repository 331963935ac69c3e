"""Document sources: text/folders/globs, JSONL, Parquet; errors name file and line or field."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm_jax.data.errors import DataError
from llm_jax.data.sources import BadRecordStats, read_documents, split_long_text


def test_text_folder_glob(tmp_path):
    (tmp_path / "a.txt").write_text("first doc")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("second doc")
    (tmp_path / "ignored.bin").write_bytes(b"\0")
    assert list(read_documents([str(tmp_path)])) == ["first doc", "second doc"]
    assert list(read_documents([str(tmp_path / "*.txt")])) == ["first doc"]
    assert list(read_documents([str(tmp_path / "a.txt")])) == ["first doc"]


def test_long_text_splits_on_paragraphs_and_rejoins():
    text = "".join(f"paragraph {i} " + "word " * 50 + "\n\n" for i in range(2000))
    pieces = split_long_text(text, 10_000)
    assert len(pieces) > 1 and "".join(pieces) == text
    assert all(len(p) <= 10_000 for p in pieces)
    assert all(p.endswith("\n\n") for p in pieces[:-1])


def test_jsonl_and_parquet(tmp_path):
    rows = [{"text": f"doc {i}", "id": i} for i in range(5)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pq.write_table(pa.table({"text": [r["text"] for r in rows], "id": list(range(5))}),
                   tmp_path / "d.parquet")
    assert list(read_documents([str(tmp_path / "d.jsonl")])) == [r["text"] for r in rows]
    assert list(read_documents([str(tmp_path / "d.parquet")])) == [r["text"] for r in rows]
    with pytest.raises(DataError, match=r"d.parquet: no column 'body' \(columns: text, id\)"):
        list(read_documents([str(tmp_path / "d.parquet")], text_field="body"))


def test_bad_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "ok"}\n{"text": broken\n{"title": "x"}\n'
                    '{"text": 3}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:3: invalid JSON"):
        list(read_documents([str(path)]))
    stats = BadRecordStats()
    assert list(read_documents([str(path)], skip_bad=True, stats=stats)) == ["ok", "ok"]
    assert stats.count == 3
    assert any("bad.jsonl:4: no field 'text' (fields: title)" in m for m in stats.examples)
    assert any("bad.jsonl:5: field 'text' is int" in m for m in stats.examples)


def test_empty_corpus_and_missing_path(tmp_path):
    (tmp_path / "blank.txt").write_text("  \n\n ")
    with pytest.raises(DataError, match="corpus is empty"):
        list(read_documents([str(tmp_path / "blank.txt")]))
    with pytest.raises(DataError, match="nothing_here.*no such file"):
        list(read_documents([str(tmp_path / "nothing_here")]))


def test_unreadable_parquet_names_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="broken.parquet: cannot read Parquet"):
        list(read_documents([str(path)]))
