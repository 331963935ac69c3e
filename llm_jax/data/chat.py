"""Our chat template: conversations → token ids + the assistant-only loss mask.

    ids, mask = render_for_training(messages, tokenizer)   # mask[i] = 1: train on ids[i]
    prompt = render_for_generation(messages, tokenizer)   # ends <|im_start|>assistant<|im_sep|>

Turns render as `<|bos|> <|im_start|>ROLE<|im_sep|>CONTENT<|im_end|> ...`, special tokens
placed by id (content spelling "<|im_start|>" stays text). The mask covers assistant content
and its `<|im_end|>`. Assistant content may be parts `[{"type": "text"|"python"|"output",
"text": ...}]`: a `python` call is trained on, its `output` (forced by the engine) is not."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

ROLES = ("system", "user", "assistant", "tool")
PART_TYPES = ("text", "python", "output")
Message = dict[str, Any]


class TemplateTokenizer(Protocol):
    """What a template needs from a tokenizer (our `Tokenizer` has it)."""

    bos_id: int

    def encode(self, text: str) -> list[int]: ...

    def special_id(self, token: str) -> int: ...


class ChatTemplate(Protocol):
    """Renders conversations for training (ids, mask) and for generation (prompt ids)."""

    def render_for_training(self, messages: Sequence[Message], tokenizer: Any
                            ) -> tuple[list[int], list[int]]: ...

    def render_for_generation(self, messages: Sequence[Message], tokenizer: Any) -> list[int]: ...

    def stop_ids(self, tokenizer: Any) -> tuple[int, ...]: ...


def identity_system_message(name: str, maker: str) -> str:
    """The default system prompt that tells the model who it is."""
    return (f"You are {name}, a helpful assistant made by {maker}. "
            f"Answer clearly and say when you do not know something.")


def content_parts(content: str | Sequence[dict]) -> list[dict]:
    """A message's content as a list of parts (a string is one text part)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def content_text(content: str | Sequence[dict]) -> str:
    """Plain text of a message's content (tool calls shown as `EXPR = RESULT`), for display
    and for templates that have no tool tokens."""
    pieces = []
    for part in content_parts(content):
        kind = part.get("type")
        pieces.append({"python": "{} = ", "output": "{}"}.get(kind, "{}").format(part["text"]))
    return "".join(pieces)


def with_system(messages: Sequence[Message], system: str | None) -> list[Message]:
    """`messages` with `system` as a first system turn, unless there is one already."""
    messages = list(messages)
    if system and not (messages and messages[0]["role"] == "system"):
        messages.insert(0, {"role": "system", "content": system})
    return messages


@dataclasses.dataclass(frozen=True)
class OurTemplate:
    """`<|im_start|>ROLE<|im_sep|>CONTENT<|im_end|>` turns; `system`: default system message."""

    system: str | None = None

    def _header(self, role: str, tokenizer: TemplateTokenizer) -> list[int]:
        return [tokenizer.special_id("<|im_start|>"), *tokenizer.encode(role),
                tokenizer.special_id("<|im_sep|>")]

    def _content(self, message: Message, tokenizer: TemplateTokenizer
                 ) -> tuple[list[int], list[int]]:
        trained = int(message["role"] == "assistant")
        ids: list[int] = []
        mask: list[int] = []
        for part in content_parts(message["content"]):
            kind = part.get("type", "text")
            if kind not in PART_TYPES:
                raise ValueError(f"unknown content part type {kind!r} (known: "
                                 f"{', '.join(PART_TYPES)})")
            if kind != "text" and message["role"] != "assistant":
                raise ValueError(f"a {kind!r} part can only appear in an assistant message")
            piece = tokenizer.encode(part["text"])
            if kind == "python":
                piece = [tokenizer.special_id("<|python_start|>"), *piece,
                         tokenizer.special_id("<|python_end|>")]
            elif kind == "output":
                piece = [tokenizer.special_id("<|output_start|>"), *piece,
                         tokenizer.special_id("<|output_end|>")]
            ids += piece
            # Tool output is forced by the engine, never generated: no loss on it.
            mask += [0 if kind == "output" else trained] * len(piece)
        return ids, mask

    def render_for_training(self, messages: Sequence[Message], tokenizer: TemplateTokenizer
                            ) -> tuple[list[int], list[int]]:
        """(ids, loss_mask) of the whole conversation; mask 1 on assistant content and its
        `<|im_end|>`."""
        ids, mask = [tokenizer.bos_id], [0]
        end = tokenizer.special_id("<|im_end|>")
        for message in with_system(messages, self.system):
            header = self._header(message["role"], tokenizer)
            body, body_mask = self._content(message, tokenizer)
            ids += [*header, *body, end]
            mask += [0] * len(header) + body_mask + [int(message["role"] == "assistant")]
        return ids, mask

    def render_for_generation(self, messages: Sequence[Message], tokenizer: TemplateTokenizer
                              ) -> list[int]:
        """Prompt ids: the conversation so far, then `<|im_start|>assistant<|im_sep|>`."""
        ids, _ = self.render_for_training(messages, tokenizer)
        return ids + self._header("assistant", tokenizer)

    def stop_ids(self, tokenizer: TemplateTokenizer) -> tuple[int, ...]:
        """A reply ends at `<|im_end|>` (or `<|eos|>`, should a base model emit it)."""
        return (tokenizer.special_id("<|im_end|>"), tokenizer.special_id("<|eos|>"))


def render_for_training(messages: Sequence[Message], tokenizer: TemplateTokenizer,
                        system: str | None = None) -> tuple[list[int], list[int]]:
    """`OurTemplate(system).render_for_training(messages, tokenizer)`."""
    return OurTemplate(system).render_for_training(messages, tokenizer)


def render_for_generation(messages: Sequence[Message], tokenizer: TemplateTokenizer,
                          system: str | None = None) -> list[int]:
    """`OurTemplate(system).render_for_generation(messages, tokenizer)`."""
    return OurTemplate(system).render_for_generation(messages, tokenizer)


def sft_example(messages: Sequence[Message], tokenizer: Any,
                template: ChatTemplate | None = None) -> dict[str, np.ndarray]:
    """A packing example: inputs = ids[:-1], targets = ids[1:], loss_mask = mask[1:].

    Pack with `fields=("inputs", "targets", "loss_mask"), split=False`."""
    ids, mask = (template or OurTemplate()).render_for_training(messages, tokenizer)
    ids_arr = np.asarray(ids, np.int32)
    return {"inputs": ids_arr[:-1], "targets": ids_arr[1:],
            "loss_mask": np.asarray(mask[1:], np.int32)}


def rendered_length(messages: Sequence[Message], tokenizer: Any,
                    template: ChatTemplate | None = None) -> int:
    """Tokens a conversation takes in a packed row (ids - 1: inputs are shifted)."""
    ids, _ = (template or OurTemplate()).render_for_training(messages, tokenizer)
    return len(ids) - 1


def check_length(messages: Sequence[Message], tokenizer: Any, seq_len: int,
                 template: ChatTemplate | None = None) -> None:
    """ValueError when the rendered conversation does not fit in a `seq_len` row (packing
    would cut its end off: usually the reply and its `<|im_end|>`)."""
    length = rendered_length(messages, tokenizer, template)
    if length > seq_len:
        raise ValueError(f"conversation is {length} tokens after rendering, longer than "
                         f"seq_len={seq_len}")
