"""Document sources for pretraining: `records.read_records` with the `text_field` validator."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from llm_jax.data.errors import DataError
from llm_jax.data.records import (  # noqa: F401 - re-exported: trainers import them from here
    BadRecordStats,
    Validator,
    check_record,
    expand_paths,
    read_records,
    split_long_text,
    text_field,
)


def read_documents(patterns: Sequence[str], *, text_field: str = "text", skip_bad: bool = False,
                   stats: BadRecordStats | None = None) -> Iterator[str]:
    """Non-empty documents from every file the patterns name (`text_field`: JSONL key and
    Parquet column); an empty corpus is a DataError."""
    n = 0
    for doc in read_records(patterns, skip_bad=skip_bad, stats=stats,
                            validate=_text_validator(text_field), columns=(text_field,)):
        n += 1
        yield doc
    if n == 0:
        raise DataError(f"{', '.join(patterns)}: the corpus is empty (no non-empty documents)")


def _text_validator(name: str) -> Validator:
    # `text_field` is also a parameter name in this module's functions.
    return text_field(name)


def hf_records(name: str, split: str = "train", *, config_name: str | None = None,
               streaming: bool = True, limit: int | None = None,
               validate: Validator | None = None, skip_bad: bool = False,
               stats: BadRecordStats | None = None) -> Iterator[Any]:
    """Records of a Hugging Face dataset (needs network and `pip install "llm-jax[hf]"`),
    checked by `validate` like file records; errors name the dataset and record number."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"hf dataset {name}: the `datasets` package is missing; "
                        'pip install "llm-jax[hf]"') from None
    ds = datasets.load_dataset(name, config_name, split=split, streaming=streaming)
    for i, record in enumerate(ds):
        if limit is not None and i >= limit:
            return
        value = check_record(f"hf dataset {name}: record {i}", dict(record), validate,
                             skip_bad=skip_bad, stats=stats)
        if value is not None:
            yield value


def hf_documents(name: str, split: str = "train", *, text_field: str = "text",
                 config_name: str | None = None, streaming: bool = True,
                 limit: int | None = None) -> Iterator[str]:
    """Non-empty documents from a Hugging Face dataset's `text_field`."""
    yield from hf_records(name, split, config_name=config_name, streaming=streaming,
                          limit=limit, validate=_text_validator(text_field))
