"""Document sources: text files, folders and globs; JSONL; Parquet (FineWeb layout); HF datasets.

Every source yields plain strings. Bad records raise `DataError` naming file and line (or file
and field); with `skip_bad=True` they are skipped and counted in a `BadRecordStats`.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from llm_jax.data.errors import DataError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".text")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
MAX_DOCUMENT_CHARS = 16_000  # long text files are split on paragraphs so shuffling has grain


@dataclasses.dataclass
class BadRecordStats:
    """Counts records skipped under `skip_bad`, with a few example messages for the logs."""

    count: int = 0
    examples: list[str] = dataclasses.field(default_factory=list)

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(message)
        log.warning("skipping bad record: %s", message)


def _kind(path: Path) -> str | None:
    name = path.name.lower().removesuffix(".gz")
    for kind, suffixes in (("text", TEXT_SUFFIXES), ("jsonl", JSONL_SUFFIXES),
                           ("parquet", PARQUET_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    return None


def expand_paths(patterns: Sequence[str]) -> list[Path]:
    """Files named by paths, folders (recursive) and globs, in a stable order."""
    files: list[Path] = []
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True)
                           if Path(p).is_file())
        if not found:
            raise DataError(f"{pattern}: no such file, or no .txt/.jsonl/.parquet files match")
        files.extend(found)
    return files


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def split_long_text(text: str, max_chars: int = MAX_DOCUMENT_CHARS) -> list[str]:
    """Split on blank lines into pieces of at most ~max_chars; concatenating them gives `text`."""
    if len(text) <= max_chars:
        return [text]
    pieces, start = [], 0
    while start < len(text):
        end = start + max_chars
        if end < len(text):
            cut = text.rfind("\n\n", start + max_chars // 2, end)
            end = cut + 2 if cut != -1 else end
        pieces.append(text[start:end])
        start = end
    return pieces


def _text_documents(path: Path) -> Iterator[str]:
    try:
        with _open_text(path) as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from None
    yield from split_long_text(text)


def _jsonl_documents(path: Path, field: str, skip_bad: bool,
                     stats: BadRecordStats | None) -> Iterator[str]:
    with _open_text(path) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"expected a JSON object, got {type(record).__name__}")
            except ValueError as e:
                problem = f"{path}:{line_no}: invalid JSON ({e})"
            else:
                if field not in record:
                    problem = (f"{path}:{line_no}: no field {field!r} (fields: "
                               f"{', '.join(sorted(record)) or 'none'})")
                elif not isinstance(record[field], str):
                    problem = (f"{path}:{line_no}: field {field!r} is "
                               f"{type(record[field]).__name__}, not text")
                else:
                    yield record[field]
                    continue
            if not skip_bad:
                raise DataError(problem)
            if stats is not None:
                stats.add(problem)


def _parquet_documents(path: Path, field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataError(f"{path}: cannot read Parquet ({type(e).__name__}: {e})") from None
    if field not in parquet.schema_arrow.names:
        raise DataError(f"{path}: no column {field!r} (columns: "
                        f"{', '.join(parquet.schema_arrow.names)})")
    for batch in parquet.iter_batches(columns=[field], batch_size=1024):
        for value in batch.column(0).to_pylist():
            if isinstance(value, str):
                yield value


def read_documents(patterns: Sequence[str], *, text_field: str = "text", skip_bad: bool = False,
                   stats: BadRecordStats | None = None) -> Iterator[str]:
    """Non-empty documents from every file the patterns name."""
    n = 0
    for path in expand_paths(patterns):
        kind = _kind(path) or "text"
        if kind == "jsonl":
            docs = _jsonl_documents(path, text_field, skip_bad, stats)
        elif kind == "parquet":
            docs = _parquet_documents(path, text_field)
        else:
            docs = _text_documents(path)
        for doc in docs:
            if doc.strip():
                n += 1
                yield doc
    if n == 0:
        raise DataError(f"{', '.join(patterns)}: the corpus is empty (no non-empty documents)")


def hf_documents(name: str, split: str = "train", *, text_field: str = "text",
                 config_name: str | None = None, streaming: bool = True,
                 limit: int | None = None) -> Iterator[str]:
    """Documents from a Hugging Face dataset (needs network and `pip install "llm-jax[hf]"`)."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"hf dataset {name}: the `datasets` package is missing; "
                        'pip install "llm-jax[hf]"') from None
    ds = datasets.load_dataset(name, config_name, split=split, streaming=streaming)
    for i, record in enumerate(ds):
        if limit is not None and i >= limit:
            return
        if text_field not in record:
            raise DataError(f"hf dataset {name}: record {i} has no field {text_field!r} "
                            f"(fields: {', '.join(record)})")
        if record[text_field].strip():
            yield record[text_field]
