"""Conversation datasets through the records layer: every layout becomes a list of messages.

Layouts (JSONL or Parquet; `layout="auto"` picks by fields): `messages`; ShareGPT
`conversations` (`from`/`value`); TRL prompt/completion (strings or message lists). A bad
record raises `DataError` naming `file:line`, or with `skip_bad=True` is skipped and counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from llm_jax.data.chat import PART_TYPES, ROLES, ChatTemplate, Message, check_length
from llm_jax.data.errors import DataError
from llm_jax.data.records import BadRecordStats, Record, read_records

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "tool": "tool", "function_call": "assistant",
                  "observation": "tool"}
LAYOUTS = ("auto", "messages", "sharegpt", "prompt_completion")


def _content(value: Any, where: str) -> Any:
    """A message's content checked: non-blank text, or a non-empty list of typed parts."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{where} has empty content")
        return value
    if isinstance(value, list) and value:
        for part in value:
            if (not isinstance(part, dict) or part.get("type") not in PART_TYPES
                    or not isinstance(part.get("text"), str) or not part["text"]):
                raise ValueError(f"{where} has a bad content part {part!r} (parts are "
                                 f"{{'type': {'|'.join(PART_TYPES)}, 'text': str}})")
        return value
    if value is None or value == []:
        raise ValueError(f"{where} has empty content")
    raise ValueError(f"{where} content is {type(value).__name__}, not text")


def check_messages(messages: Any) -> list[Message]:
    """The messages as clean `{"role", "content"}` dicts, or ValueError saying what is wrong."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("a conversation must be a non-empty list of messages")
    clean = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"message {i} is {type(message).__name__}, not an object")
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(f"message {i} has unknown role {role!r} (known: {', '.join(ROLES)})")
        clean.append({"role": role, "content": _content(message.get("content"),
                                                        f"message {i} ({role})")})
    if not any(m["role"] == "assistant" for m in clean):
        raise ValueError("no assistant turn (nothing to train on)")
    return clean


def _field(record: Record, name: str) -> Any:
    if name not in record:
        raise ValueError(f"no field {name!r} (fields: {', '.join(sorted(record)) or 'none'})")
    return record[name]


def messages_layout(record: Record) -> list[Message]:
    return check_messages(_field(record, "messages"))


def sharegpt_layout(record: Record) -> list[Message]:
    turns = _field(record, "conversations")
    if not isinstance(turns, list):
        raise ValueError("field 'conversations' must be a list of {from, value}")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ValueError(f"message {i} is {type(turn).__name__}, not an object")
        source = turn.get("from")
        if source not in SHAREGPT_ROLES:
            raise ValueError(f"message {i} has unknown role {source!r} "
                             f"(known: {', '.join(SHAREGPT_ROLES)})")
        messages.append({"role": SHAREGPT_ROLES[source], "content": turn.get("value")})
    return check_messages(messages)


def prompt_completion_layout(record: Record) -> list[Message]:
    prompt, completion = _field(record, "prompt"), _field(record, "completion")
    if isinstance(prompt, str) and isinstance(completion, str):
        return check_messages([{"role": "user", "content": prompt},
                               {"role": "assistant", "content": completion}])
    if isinstance(prompt, list) and isinstance(completion, list):
        return check_messages([*prompt, *completion])
    raise ValueError("'prompt' and 'completion' must both be strings or both message lists")


def detect_layout(record: Record) -> Callable[[Record], list[Message]]:
    """The layout a record is in, by its fields."""
    if "messages" in record:
        return messages_layout
    if "conversations" in record:
        return sharegpt_layout
    if "prompt" in record and "completion" in record:
        return prompt_completion_layout
    raise ValueError("not a conversation: expected a 'messages', 'conversations' or "
                     f"'prompt'+'completion' field (fields: {', '.join(sorted(record)) or 'none'})")


_LAYOUTS = {"messages": messages_layout, "sharegpt": sharegpt_layout,
            "prompt_completion": prompt_completion_layout}


def conversation_validator(layout: str = "auto", *, tokenizer: Any = None,
                           seq_len: int | None = None, template: ChatTemplate | None = None
                           ) -> Callable[[Record], list[Message]]:
    """A `read_records` validator: record → messages; with `tokenizer` and `seq_len` it also
    rejects conversations that do not fit in a row."""
    if layout not in LAYOUTS:
        raise DataError(f"data.layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    if (tokenizer is None) != (seq_len is None):
        raise ValueError("checking lengths needs both tokenizer and seq_len")

    def validate(record: Record) -> list[Message]:
        convert = detect_layout(record) if layout == "auto" else _LAYOUTS[layout]
        messages = convert(record)
        if seq_len is not None:
            check_length(messages, tokenizer, seq_len, template)
        return messages

    return validate


def read_conversations(patterns: Sequence[str], *, layout: str = "auto", tokenizer: Any = None,
                       seq_len: int | None = None, template: ChatTemplate | None = None,
                       skip_bad: bool = False, stats: BadRecordStats | None = None
                       ) -> Iterator[list[Message]]:
    """Conversations from JSONL/Parquet files (paths, folders, globs); see the module doc."""
    validate = conversation_validator(layout, tokenizer=tokenizer, seq_len=seq_len,
                                      template=template)
    return read_records(patterns, validate=validate, skip_bad=skip_bad, stats=stats)

