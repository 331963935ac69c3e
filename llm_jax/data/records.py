"""Records from text, JSONL and Parquet files: one reader and one error style for every stage.

A stage's validator returns the value to keep (None drops) or raises ValueError; this module
adds where (`chats.jsonl:17: ...`) as a `DataError`, or skips and counts with `skip_bad=True`."""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import logging
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from llm_jax.data.errors import DataError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".text")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
MAX_DOCUMENT_CHARS = 16_000  # long text files are split on paragraphs so shuffling has grain

Record = dict[str, Any]
Validator = Callable[[Record], Any]  # raises ValueError for a bad record; None = drop it
# Exceptions a damaged compressed stream raises part-way through a read.
STREAM_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, OSError)


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


def file_kind(path: Path) -> str | None:
    """'text', 'jsonl' or 'parquet' from the file name (a trailing .gz is allowed), or None."""
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
            found = sorted(p for p in path.rglob("*") if p.is_file() and file_kind(p))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True)
                           if Path(p).is_file())
        if not found:
            raise DataError(f"{pattern}: no such file, or no .txt/.jsonl/.parquet files match")
        files.extend(found)
    return files


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


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _stream_problem(path: Path, error: Exception, line: int | None = None) -> DataError:
    where = f"{path}:{line}" if line else str(path)
    if isinstance(error, UnicodeDecodeError):
        return DataError(f"{where}: not UTF-8 text ({error.reason} at byte {error.start})")
    damaged = "truncated or damaged compressed file" if path.name.endswith(".gz") else "unreadable"
    reached = f" (read up to line {line})" if line else ""
    return DataError(f"{path}: {damaged}{reached}: {type(error).__name__}: {error}")


def text_records(path: Path) -> Iterator[tuple[str, Record]]:
    """(where, {"text": piece}) for a text file, split into paragraph-aligned pieces."""
    try:
        with _open_text(path) as f:
            text = f.read()
    except (UnicodeDecodeError, *STREAM_ERRORS) as e:
        raise _stream_problem(path, e) from None
    for piece in split_long_text(text):
        yield str(path), {"text": piece}


def jsonl_records(path: Path, skip_bad: bool = False,
                  stats: BadRecordStats | None = None) -> Iterator[tuple[str, Record]]:
    """(file:line, object) for each non-blank line; a line that is not a JSON object is bad."""
    line_no = 0
    try:
        with _open_text(path) as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{line_no}"
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
                except ValueError as e:
                    _reject(f"{where}: invalid JSON ({e})", skip_bad, stats)
                    continue
                yield where, record
    except (UnicodeDecodeError, *STREAM_ERRORS) as e:
        raise _stream_problem(path, e, line_no + 1) from None


def parquet_file(path: Path, columns: Sequence[str] | None = None):
    """An open `pyarrow.parquet.ParquetFile`, checking that `columns` exist."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataError(f"{path}: cannot read Parquet ({type(e).__name__}: {e})") from None
    names = parquet.schema_arrow.names
    missing = [c for c in columns or () if c not in names]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r} (columns: {', '.join(names)})")
    return parquet


def read_row_group(parquet, path: Path, group: int, columns: Sequence[str] | None):
    """One row group as a pyarrow Table; a damaged one is a DataError naming file and group."""
    try:
        return parquet.read_row_group(group, columns=list(columns) if columns else None)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for bad pages
        raise DataError(f"{path}: row group {group} cannot be read "
                        f"({type(e).__name__}: {e})") from None


def parquet_records(path: Path, columns: Sequence[str] | None = None
                    ) -> Iterator[tuple[str, Record]]:
    """(file: row N, {column: value}) for each row, one row group in memory at a time."""
    parquet = parquet_file(path, columns)
    row = 0
    for group in range(parquet.num_row_groups):
        for record in read_row_group(parquet, path, group, columns).to_pylist():
            yield f"{path}: row {row}", record
            row += 1


def _reject(problem: str, skip_bad: bool, stats: BadRecordStats | None) -> None:
    if not skip_bad:
        raise DataError(problem)
    if stats is not None:
        stats.add(problem)


def check_record(where: str, record: Record, validate: Validator | None, *, skip_bad: bool,
                 stats: BadRecordStats | None) -> Any:
    """`validate(record)`, or None when it drops the record (or it is bad and skipped)."""
    if validate is None:
        return record
    try:
        return validate(record)
    except ValueError as e:
        _reject(f"{where}: {e}", skip_bad, stats)
        return None


def file_records(path: Path, *, skip_bad: bool = False, stats: BadRecordStats | None = None,
                 columns: Sequence[str] | None = None) -> Iterator[tuple[str, Record]]:
    """(where, record) for any supported file, by its suffix (unknown suffixes read as text)."""
    kind = file_kind(path) or "text"
    if kind == "jsonl":
        return jsonl_records(path, skip_bad, stats)
    if kind == "parquet":
        return parquet_records(path, columns)
    return text_records(path)


def read_records(patterns: Sequence[str], *, skip_bad: bool = False,
                 stats: BadRecordStats | None = None, validate: Validator | None = None,
                 columns: Sequence[str] | None = None) -> Iterator[Any]:
    """`validate(record)` for every record of every file the patterns name (None dropped)."""
    for path in expand_paths(patterns):
        for where, record in file_records(path, skip_bad=skip_bad, stats=stats,
                                          columns=columns):
            value = check_record(where, record, validate, skip_bad=skip_bad, stats=stats)
            if value is not None:
                yield value


def text_field(name: str = "text") -> Validator:
    """Validator for documents: the string in `name`; blank documents are dropped, a null one
    is a bad record (an error naming file and line, or skipped and counted under skip_bad)."""

    def document(record: Record) -> str | None:
        if name not in record:
            raise ValueError(f"no field {name!r} (fields: {', '.join(sorted(record)) or 'none'})")
        value = record[name]
        if value is None:
            raise ValueError(f"field {name!r} is null")
        if not isinstance(value, str):
            raise ValueError(f"field {name!r} is {type(value).__name__}, not text")
        return value if value.strip() else None

    return document
