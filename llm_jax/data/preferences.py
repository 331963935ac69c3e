"""Preference pairs through the records layer: every layout becomes `PreferencePair`s.

Layouts (`layout="auto"` picks by fields): `ranking` (as `llm-jax rank` writes), TRL's
`explicit` and `implicit`, and Anthropic `hh` text. Other fields go to `pair.meta`."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from llm_jax.data.chat import ChatTemplate, Message, OurTemplate
from llm_jax.data.conversations import check_messages
from llm_jax.data.errors import DataError
from llm_jax.data.records import BadRecordStats, Record, read_records

LAYOUTS = ("auto", "ranking", "explicit", "implicit", "hh")
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


@dataclasses.dataclass(frozen=True)
class PreferencePair:
    """A prompt (messages before the reply) and two replies to it, `chosen` the better one."""

    prompt_messages: list[Message]
    chosen: str
    rejected: str
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def messages(self, reply: str) -> list[Message]:
        """The conversation the prompt and one reply make."""
        return [*self.prompt_messages, {"role": "assistant", "content": reply}]


def _field(record: Record, name: str) -> Any:
    if name not in record:
        raise ValueError(f"no field {name!r} (fields: {', '.join(sorted(record)) or 'none'})")
    return record[name]


def _meta(record: Record, layout_fields: Sequence[str]) -> dict[str, Any]:
    meta = {k: v for k, v in record.items() if k not in layout_fields and k != "meta"}
    if isinstance(record.get("meta"), dict):
        meta.update(record["meta"])
    return meta


def check_prompt(value: Any) -> list[Message]:
    """A prompt as messages: text is one user turn; a list must not end with an assistant."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("'prompt' is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise ValueError("'prompt' must be text or a non-empty list of messages")
    try:
        # check_messages checks training conversations, which need an assistant turn: give it
        # one where the reply will go, so only the prompt's own messages are judged.
        messages = check_messages([*value, {"role": "assistant", "content": "reply"}])[:-1]
    except ValueError as e:
        raise ValueError(f"'prompt' {e}") from None
    if messages[-1]["role"] == "assistant":
        raise ValueError("'prompt' ends with an assistant turn: the reply must follow a user "
                         "(or tool) turn")
    return messages


def _reply(value: Any, name: str, *, allow_empty: bool = False) -> str:
    if isinstance(value, list):  # conversational: [{"role": "assistant", "content": ...}]
        if len(value) != 1 or not isinstance(value[0], dict) \
                or value[0].get("role") != "assistant":
            raise ValueError(f"{name!r} must be text or one assistant message, got a list of "
                             f"{len(value)} item(s)")
        value = value[0].get("content")
    if not isinstance(value, str):
        raise ValueError(f"{name!r} is {type(value).__name__}, not text")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name!r} is empty")
    return value


def _pair(prompt: list[Message], chosen: str, rejected: str, meta: dict) -> PreferencePair:
    if chosen.strip() == rejected.strip():
        raise ValueError("'chosen' and 'rejected' are the same reply (nothing to prefer)")
    return PreferencePair(prompt, chosen, rejected, meta)


def explicit_layout(record: Record) -> list[PreferencePair]:
    prompt = check_prompt(_field(record, "prompt"))
    chosen = _reply(_field(record, "chosen"), "chosen")
    rejected = _reply(_field(record, "rejected"), "rejected")
    return [_pair(prompt, chosen, rejected, _meta(record, ("prompt", "chosen", "rejected")))]


def _split_shared(chosen: list[Message], rejected: list[Message]
                  ) -> tuple[list[Message], str, str]:
    """(shared prompt, chosen reply, rejected reply) of two conversations that differ only in
    their final assistant turn."""
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise ValueError("'chosen' and 'rejected' must each end with an assistant turn")
    if chosen[:-1] != rejected[:-1]:
        raise ValueError("'chosen' and 'rejected' differ before their final assistant turn "
                         "(no shared prompt)")
    if len(chosen) < 2:
        raise ValueError("'chosen' and 'rejected' have no prompt before the reply")
    return check_prompt(chosen[:-1]), chosen[-1]["content"], rejected[-1]["content"]


def implicit_layout(record: Record) -> list[PreferencePair]:
    conversations = []
    for name in ("chosen", "rejected"):
        value = _field(record, name)
        if not isinstance(value, list):
            raise ValueError(f"{name!r} must be a list of messages (implicit-prompt layout)")
        try:
            conversations.append(check_messages(value))
        except ValueError as e:
            raise ValueError(f"{name!r}: {e}") from None
    prompt, chosen, rejected = _split_shared(*conversations)
    return [_pair(prompt, _reply(chosen, "chosen"), _reply(rejected, "rejected"),
                  _meta(record, ("chosen", "rejected")))]


def hh_messages(text: str, name: str = "text") -> list[Message]:
    """"\\n\\nHuman: ...\\n\\nAssistant: ..." as messages (content stripped, may be blank)."""
    if text.startswith(("Human:", "Assistant:")):
        text = "\n\n" + text  # some copies drop the leading blank line
    pieces = _HH_TURN.split(text)
    if pieces[0].strip() or len(pieces) < 3:
        raise ValueError(f"{name!r} is not HH-RLHF text ('\\n\\nHuman: ...\\n\\nAssistant: "
                         "...' turns)")
    return [{"role": _HH_ROLES[who], "content": body.strip()}
            for who, body in zip(pieces[1::2], pieces[2::2])]


def hh_layout(record: Record) -> list[PreferencePair]:
    chosen, rejected = (hh_messages(_reply(_field(record, n), n), n)
                        for n in ("chosen", "rejected"))
    prompt, chosen_reply, rejected_reply = _split_shared(chosen, rejected)
    return [_pair(prompt, _reply(chosen_reply, "chosen"), _reply(rejected_reply, "rejected"),
                  _meta(record, ("chosen", "rejected")))]


def check_ranking(ranking: Any, k: int) -> list[int]:
    """`ranking` as a list of ints, or ValueError unless it is a permutation of 0..k-1."""
    if not isinstance(ranking, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ranking):
        raise ValueError("'ranking' must be a list of response indices (integers), best first")
    if sorted(ranking) != list(range(k)):
        raise ValueError(f"'ranking' {ranking} is not a permutation of 0..{k - 1} (the 0-based "
                         f"indices of the {k} responses, best first)")
    return list(ranking)


def ranking_pairs(prompt: list[Message], responses: Sequence[str], ranking: Sequence[int],
                  meta: dict | None = None) -> list[PreferencePair]:
    """Every response beats each one ranked below it; identical responses are dropped."""
    pairs = []
    for hi, better in enumerate(ranking):
        for lo in range(hi + 1, len(ranking)):
            chosen, rejected = responses[better], responses[ranking[lo]]
            if chosen.strip() != rejected.strip():
                pairs.append(PreferencePair(prompt, chosen, rejected,
                                            {**(meta or {}), "ranks": (hi, lo)}))
    return pairs


def ranking_layout(record: Record) -> list[PreferencePair]:
    prompt = check_prompt(_field(record, "prompt"))
    responses = _field(record, "responses")
    if not isinstance(responses, list) or len(responses) < 2:
        raise ValueError("'responses' must be a list of at least 2 replies")
    responses = [_reply(r, f"responses[{i}]", allow_empty=True) for i, r in enumerate(responses)]
    ranking = check_ranking(_field(record, "ranking"), len(responses))
    pairs = ranking_pairs(prompt, responses, ranking,
                          _meta(record, ("prompt", "responses", "ranking")))
    if not pairs:
        raise ValueError("all responses are the same (nothing to prefer)")
    return pairs


def detect_layout(record: Record) -> Callable[[Record], list[PreferencePair]]:
    """The layout a record is in, by its fields."""
    if "responses" in record or "ranking" in record:
        return ranking_layout
    if "prompt" in record:
        return explicit_layout
    if "chosen" in record and "rejected" in record:
        return hh_layout if isinstance(record["chosen"], str) else implicit_layout
    raise ValueError("not a preference record: expected 'prompt'+'chosen'+'rejected', "
                     "'chosen'+'rejected', or 'prompt'+'responses'+'ranking' (fields: "
                     f"{', '.join(sorted(record)) or 'none'})")


_LAYOUTS = {"ranking": ranking_layout, "explicit": explicit_layout,
            "implicit": implicit_layout, "hh": hh_layout}


@dataclasses.dataclass(frozen=True)
class TokenizedPair:
    """A pair rendered with a chat template; `prompt_cut` = prompt tokens dropped to fit."""

    chosen_ids: np.ndarray      # int32 [Lc]
    chosen_mask: np.ndarray     # int32 [Lc]
    rejected_ids: np.ndarray    # int32 [Lr]
    rejected_mask: np.ndarray   # int32 [Lr]
    prompt_cut: int = 0

    @property
    def chosen_last(self) -> int:
        """Index of the chosen sequence's last real token (where a reward head reads)."""
        return len(self.chosen_ids) - 1

    @property
    def rejected_last(self) -> int:
        return len(self.rejected_ids) - 1


def tokenize_pair(pair: PreferencePair, tokenizer: Any, template: ChatTemplate | None = None,
                  seq_len: int | None = None, *, min_prompt_tokens: int = 8) -> TokenizedPair:
    """Render prompt + each reply into a `TokenizedPair` of at most `seq_len` ids each.

    Too long: the prompt is cut at its front (keeping `<|bos|>`); below `min_prompt_tokens` left,
    ValueError."""
    template = template or OurTemplate()
    prompt = list(template.render_for_generation(pair.prompt_messages, tokenizer))
    replies = []
    for reply in (pair.chosen, pair.rejected):
        ids, mask = template.render_for_training(pair.messages(reply), tokenizer)
        if list(ids[:len(prompt)]) != prompt:
            raise ValueError("the chat template does not render the prompt as the start of "
                             "prompt + reply; cannot find the reply's tokens")
        replies.append((list(ids[len(prompt):]), list(mask[len(prompt):])))
    longest = max(len(ids) for ids, _ in replies)
    cut = 0
    if seq_len is not None and len(prompt) + longest > seq_len:
        room = seq_len - longest
        if room < min_prompt_tokens:
            raise ValueError(f"pair does not fit in seq_len={seq_len}: the longer reply is "
                             f"{longest} tokens, leaving {max(room, 0)} for the prompt "
                             f"(at least {min_prompt_tokens} needed)")
        keep_bos = prompt[0] == getattr(tokenizer, "bos_id", None)
        cut = len(prompt) - room
        prompt = [prompt[0], *prompt[cut + 1:]] if keep_bos else prompt[cut:]
    arrays = []
    for ids, mask in replies:
        arrays += [np.asarray(prompt + ids, np.int32),
                   np.asarray([0] * len(prompt) + mask, np.int32)]
    return TokenizedPair(*arrays, prompt_cut=cut)


def preference_batch(pairs: Sequence[TokenizedPair], seq_len: int, pad_id: int,
                     batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Right-padded arrays for a reward-model or DPO step, rows padded to `batch_size`.

    Per side: `{side}_tokens` [B, seq_len], `{side}_segment_ids`, `{side}_loss_mask`,
    `{side}_last` [B]; `weights` [B] is 0 on padding rows."""
    rows = len(pairs) if batch_size is None else batch_size
    if rows < len(pairs):
        raise ValueError(f"{len(pairs)} pairs do not fit in batch_size={batch_size}")
    batch = {"weights": np.zeros(rows, np.float32)}
    batch["weights"][:len(pairs)] = 1.0
    for side in ("chosen", "rejected"):
        tokens = np.full((rows, seq_len), pad_id, np.int32)
        segments = np.zeros((rows, seq_len), np.int32)
        loss_mask = np.zeros((rows, seq_len), np.int32)
        last = np.zeros(rows, np.int32)
        for row, pair in enumerate(pairs):
            ids, mask = getattr(pair, f"{side}_ids"), getattr(pair, f"{side}_mask")
            if len(ids) > seq_len:
                raise ValueError(f"a {len(ids)}-token sequence does not fit seq_len={seq_len}")
            tokens[row, :len(ids)], segments[row, :len(ids)] = ids, 1
            loss_mask[row, :len(ids)], last[row] = mask, len(ids) - 1
        batch.update({f"{side}_tokens": tokens, f"{side}_segment_ids": segments,
                      f"{side}_loss_mask": loss_mask, f"{side}_last": last})
    return batch


def preference_validator(layout: str = "auto", *, tokenizer: Any = None,
                         seq_len: int | None = None, template: ChatTemplate | None = None
                         ) -> Callable[[Record], list[PreferencePair]]:
    """A `read_records` validator: record → pairs; with `tokenizer` and `seq_len` it also
    rejects a record whose pairs cannot fit (see `tokenize_pair`)."""
    if layout not in LAYOUTS:
        raise DataError(f"data.layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    if (tokenizer is None) != (seq_len is None):
        raise ValueError("checking lengths needs both tokenizer and seq_len")

    def validate(record: Record) -> list[PreferencePair]:
        convert = detect_layout(record) if layout == "auto" else _LAYOUTS[layout]
        pairs = convert(record)
        if seq_len is not None:
            for pair in pairs:
                tokenize_pair(pair, tokenizer, template, seq_len)
        return pairs

    return validate


def read_preferences(patterns: Sequence[str], *, layout: str = "auto", tokenizer: Any = None,
                     seq_len: int | None = None, template: ChatTemplate | None = None,
                     skip_bad: bool = False, stats: BadRecordStats | None = None
                     ) -> Iterator[PreferencePair]:
    """Preference pairs from JSONL/Parquet files (paths, folders, globs); see the module doc."""
    validate = preference_validator(layout, tokenizer=tokenizer, seq_len=seq_len,
                                    template=template)
    for pairs in read_records(patterns, validate=validate, skip_bad=skip_bad, stats=stats):
        yield from pairs
