"""Token ids → the content parts a client sees, incrementally, with stop strings.

    stream = PartStream(tokenizer, hidden={eos}, tools=tools, stop_strings=["\\n\\n"])
    deltas = stream.token(id)       # [{"type": "text", "text": "Hel"}], maybe []
    deltas = stream.forced(ids)     # a tool's output: [{"type": "output", "text": "1776"}]
    deltas = stream.flush()         # what was held back, at the end

Parts follow the chat template's types: `text`, `python` (a calculator call the model wrote
between <|python_start|> and <|python_end|>) and `output` (what the engine forced in). Text is
decoded per part from all of the part's ids, so multi-byte characters split over tokens come
out whole: a delta never ends in a half character (U+FFFD is held back until completed).
Text that could still turn into a stop string is held back too; once a stop string appears,
the text before it is emitted and `stopped` is set.
"""

from __future__ import annotations

from collections.abc import Iterable


class PartStream:
    def __init__(self, tokenizer, hidden: Iterable[int] = (), tools=None,
                 stop_strings: Iterable[str] = ()):
        self.tokenizer, self.hidden, self.tools = tokenizer, set(hidden), tools
        self.stop_strings = [s for s in stop_strings if s]
        self.parts: list[dict] = []  # everything emitted so far, adjacent same-type merged
        self.stopped = False
        self._kind = "text"
        self._ids: list[int] = []  # ids of the current part
        self._shown = 0  # characters of the current part's text already emitted

    def token(self, token: int) -> list[dict]:
        """The deltas one sampled token adds."""
        if self.stopped or token in self.hidden:
            return []
        if self.tools is not None and token == self.tools.python_start:
            deltas = self.flush()
            self._start("python")
            return deltas
        if self.tools is not None and token == self.tools.python_end and self._kind == "python":
            deltas = self.flush()
            self._start("text")
            return deltas
        self._ids.append(token)
        return self._emit(final=False)

    def forced(self, ids: Iterable[int]) -> list[dict]:
        """The deltas of a tool output the engine forced in (<|output_start|>...<|output_end|>)."""
        if self.stopped:
            return []
        deltas = self.flush()
        special = () if self.tools is None else (self.tools.output_start, self.tools.output_end)
        text = self.tokenizer.decode([int(t) for t in ids if int(t) not in special])
        self._start("text")
        return deltas + self._add({"type": "output", "text": text})

    def flush(self) -> list[dict]:
        """Whatever the current part holds back (the end of a reply or of a part)."""
        return [] if self.stopped else self._emit(final=True)

    def content(self) -> str | list[dict]:
        """The whole reply: a plain string, or the list of parts when a tool was called."""
        if all(p["type"] == "text" for p in self.parts):
            return "".join(p["text"] for p in self.parts)
        return [dict(p) for p in self.parts]

    def text(self) -> str:
        return "".join(p["text"] for p in self.parts if p["type"] == "text")

    def _start(self, kind: str) -> None:
        self._kind, self._ids, self._shown = kind, [], 0

    def _emit(self, final: bool) -> list[dict]:
        text = self.tokenizer.decode(self._ids)
        end = len(text)
        if self._kind == "text" and self.stop_strings:
            found = [i for i in (text.find(s, max(0, self._shown - len(s) + 1))
                                 for s in self.stop_strings) if i >= 0]
            if found:
                delta = text[self._shown:min(found)]
                self._shown = min(found)
                self.stopped = True
                return self._add({"type": "text", "text": delta})
            if not final:  # hold back a tail that may begin a stop string
                end -= max((k for s in self.stop_strings for k in range(1, len(s))
                            if text.endswith(s[:k])), default=0)
        if not final:
            while end > self._shown and text[end - 1] == "\ufffd":
                end -= 1  # an incomplete multi-byte character: wait for its next token
        end = max(end, self._shown)
        delta, self._shown = text[self._shown:end], end
        return self._add({"type": self._kind, "text": delta})

    def _add(self, part: dict) -> list[dict]:
        if not part["text"]:
            return []
        if self.parts and self.parts[-1]["type"] == part["type"] and part["type"] != "output":
            self.parts[-1]["text"] += part["text"]
        else:
            self.parts.append(dict(part))
        return [part]
