"""The OpenAI wire format: request models, response bodies, and the error body.

    request = ChatRequest.model_validate(body)          # pydantic, 400 on a bad field
    raise ApiError(404, "model 'x' does not exist", param="model", code="model_not_found")

Requests accept what OpenAI clients send; fields we do not implement (logprobs, tools as
function schemas, ...) are accepted and ignored, as OpenAI-compatible servers commonly do,
except where ignoring them would change the answer silently (`n`, `stop`, sampling settings
are all honoured). Assistant content may be a list of our chat template's parts (text,
python, output), which is also how tool calls come back.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_jax.data.chat import ROLES


class ApiError(Exception):
    """An OpenAI-style error: HTTP status + `{"error": {message, type, param, code}}`."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param,
                          "code": self.code}}


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int | None = None
    n: int = 1
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    def stop_strings(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]

    def wants_usage_chunk(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatRequest(_Sampling):
    messages: list[Message]
    max_completion_tokens: int | None = None  # the newer name of max_tokens

    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None \
            else self.max_tokens

    def checked_messages(self) -> list[dict]:
        """The messages as the chat template takes them; an unknown role is a 400."""
        if not self.messages:
            raise ApiError(400, "messages must hold at least one message", param="messages")
        out = []
        for i, message in enumerate(self.messages):
            if message.role not in ROLES:
                raise ApiError(400, f"messages[{i}].role: unknown role {message.role!r} "
                               f"(known: {', '.join(ROLES)})", param=f"messages[{i}].role",
                               code="invalid_role")
            out.append({"role": message.role, "content": message.content or ""})
        return out


class CompletionRequest(_Sampling):
    prompt: str | list[str]

    def token_limit(self) -> int | None:
        return self.max_tokens

    def prompts(self) -> list[str]:
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
        if not prompts:
            raise ApiError(400, "prompt must not be empty", param="prompt")
        return prompts


FinishReason = Literal["stop", "length"]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def envelope(object_name: str, request_id: str, model: str, choices: list[dict],
             created: int | None = None, **extra) -> dict:
    """The fields every completion body and stream chunk share."""
    return {"id": request_id, "object": object_name,
            "created": int(time.time()) if created is None else created, "model": model,
            "choices": choices, **extra}
