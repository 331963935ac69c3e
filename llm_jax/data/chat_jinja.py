"""A Hub model's own chat template (Jinja, from `tokenizer_config.json`) with our interface.

    template = JinjaTemplate.from_folder("path/to/qwen")
    ids, mask = template.render_for_training(messages, HFTokenizer("path/to/qwen"))

Rendering follows `transformers`' `apply_chat_template` (sandboxed, trim/lstrip blocks,
`raise_exception`, `strftime_now`, `*_token` strings in the context), then tokenizes without
special tokens. The assistant mask comes from rendering prefixes: the characters turn i adds
after the conversation up to i with the generation prompt, up to and including the
end-of-turn token, are trained on. Templates that rewrite earlier turns have no such prefixes
and are refused with ValueError rather than given a wrong mask."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from llm_jax.data.chat import Message, content_text
from llm_jax.data.errors import DataError

TOKENIZER_CONFIG = "tokenizer_config.json"
TEMPLATE_FILE = "chat_template.jinja"  # newer folders keep the template in its own file
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")  # known turn ends


def _token_text(value: Any) -> str | None:
    """A special token from tokenizer_config.json: a string or an AddedToken-like dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _environment():
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlocks(Extension):
        """`{% generation %}...{% endgeneration %}` renders its body unchanged."""

        tags = {"generation"}

        def parse(self, parser) -> list[nodes.Node]:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    def raise_exception(message: str):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt: str) -> str:
        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlocks, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


@dataclasses.dataclass(frozen=True)
class JinjaTemplate:
    """A Jinja chat template and the special-token strings its context needs.

    `end_of_turn` ends an assistant turn (trained on); default: the first of `END_OF_TURN` the
    template mentions, else `eos_token`."""

    source: str
    bos_token: str = ""
    eos_token: str = ""
    end_of_turn: str | None = None
    extra_context: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_folder(cls, folder: str | Path) -> JinjaTemplate:
        """The template of a Hub folder (`chat_template.jinja` or `tokenizer_config.json`)."""
        folder = Path(folder)
        path = folder / TOKENIZER_CONFIG
        config: dict[str, Any] = {}
        if path.is_file():
            try:
                config = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        source = config.get("chat_template")
        if (folder / TEMPLATE_FILE).is_file():
            source = (folder / TEMPLATE_FILE).read_text(encoding="utf-8")
        if isinstance(source, list):  # named templates: [{"name": ..., "template": ...}]
            named = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}
            source = named.get("default")
        if not isinstance(source, str) or not source.strip():
            raise DataError(f"{path}: no chat_template (a base model has none: train it "
                            "with our template instead)")
        tokens = {k: _token_text(v) for k, v in config.items() if k.endswith("_token")}
        extra = tuple(sorted((k, v) for k, v in tokens.items()
                             if v is not None and k not in ("bos_token", "eos_token")))
        return cls(source, bos_token=tokens.get("bos_token") or "",
                   eos_token=tokens.get("eos_token") or "", extra_context=extra)

    @cached_property
    def _compiled(self):
        return _environment().from_string(self.source)

    @cached_property
    def _end(self) -> str:
        if self.end_of_turn:
            return self.end_of_turn
        known = [t for t in END_OF_TURN if t in self.source]
        return known[0] if known else self.eos_token

    def render_text(self, messages: Sequence[Message], add_generation_prompt: bool = False
                    ) -> str:
        """The template's text for `messages` (what `apply_chat_template(tokenize=False)`
        gives); structured content is flattened to text (Hub models have no tool tokens)."""
        plain = [{**m, "content": content_text(m["content"])} for m in messages]
        return self._compiled.render(messages=plain, add_generation_prompt=add_generation_prompt,
                                     bos_token=self.bos_token, eos_token=self.eos_token,
                                     **dict(self.extra_context))

    def _assistant_spans(self, messages: Sequence[Message], full: str) -> list[tuple[int, int]]:
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self.render_text(messages[:i], add_generation_prompt=True)
            upto = self.render_text(messages[:i + 1])
            if not (upto.startswith(prompt) and full.startswith(upto)):
                raise ValueError(f"the chat template renders message {i} differently once later "
                                 "messages follow, so its assistant tokens cannot be located; "
                                 "use our template for training")
            start, end = len(prompt), len(upto)
            cut = upto.rfind(self._end, start, end) if self._end else -1
            spans.append((start, cut + len(self._end) if cut != -1 else end))
        return spans

    def render_for_training(self, messages: Sequence[Message], tokenizer: Any
                            ) -> tuple[list[int], list[int]]:
        """(ids, loss_mask): mask 1 on each assistant turn up to and including its end token."""
        full = self.render_text(messages)
        ids: list[int] = []
        mask: list[int] = []
        position = 0
        for start, end in [*self._assistant_spans(messages, full), (len(full), len(full))]:
            for text, value in ((full[position:start], 0), (full[start:end], 1)):
                if text:
                    piece = tokenizer.encode(text)
                    ids += piece
                    mask += [value] * len(piece)
            position = end
        return ids, mask

    def render_for_generation(self, messages: Sequence[Message], tokenizer: Any) -> list[int]:
        """Prompt ids: the conversation with the template's generation prompt."""
        return tokenizer.encode(self.render_text(messages, add_generation_prompt=True))

    def stop_ids(self, tokenizer: Any) -> tuple[int, ...]:
        """The tokenizer's stop ids (its folder's eos ids, where chat models list turn ends)."""
        return tuple(tokenizer.stop_ids)
