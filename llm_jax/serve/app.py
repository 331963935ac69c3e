"""The FastAPI app: OpenAI routes over the batcher, the chat page, metrics, error bodies.

    app = create_app(served, batcher)       # served: ServedModel; batcher: started Batcher
    uvicorn.run(app, host="127.0.0.1", port=8000)

Routes: POST /v1/chat/completions, POST /v1/completions (both with `stream`), GET /v1/models,
GET /metrics (batch-size histogram and counters, JSON), GET / (the chat page). Every request
mistake becomes a 4xx with OpenAI's error body before anything reaches the batcher, so a bad
request never costs the other requests anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from llm_jax.serve.batcher import Batcher, GroupKey, Job
from llm_jax.serve.protocol import (
    ApiError,
    ChatRequest,
    CompletionRequest,
    envelope,
    new_id,
    usage,
)
from llm_jax.serve.text import PartStream


@dataclasses.dataclass
class ServedModel:
    """The loaded model as the routes see it."""

    name: str
    tokenizer: object
    max_seq_len: int
    template: object | None = None  # a ChatTemplate; None: /v1/chat/completions is refused
    tools: object | None = None  # ToolTokens when the calculator runs in the engine
    max_n: int = 8
    default_max_tokens: int = 256

    def chat_stops(self) -> tuple[int, ...]:
        return tuple(self.template.stop_ids(self.tokenizer))

    def text_stops(self) -> tuple[int, ...]:
        return tuple(self.tokenizer.stop_ids)


def _validated(model_type, body: object):
    try:
        return model_type.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, f"{param}: {first['msg']}" if param else first["msg"],
                       param=param) from None


async def _body(request: Request, model_type):
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"malformed JSON in the request body: {e}", code="invalid_json"
                       ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    return _validated(model_type, body)


def _budget(served: ServedModel, req, prompt_len: int) -> int:
    """max_tokens for this prompt, or a 400 naming what does not fit."""
    limit, context = req.token_limit(), served.max_seq_len
    if limit is not None and limit <= 0:
        raise ApiError(400, f"max_tokens must be at least 1 (got {limit})", param="max_tokens")
    if prompt_len + (limit or 1) > context:
        raise ApiError(400, f"this model's context is {context} tokens, but the prompt has "
                       f"{prompt_len} tokens" + (f" and max_tokens is {limit}" if limit else "")
                       + ": shorten the prompt" + (" or lower max_tokens" if limit else ""),
                       param="messages" if isinstance(req, ChatRequest) else "prompt",
                       code="context_length_exceeded")
    return limit if limit is not None else min(served.default_max_tokens, context - prompt_len)


def _check_common(served: ServedModel, req) -> None:
    if req.model != served.name:
        raise ApiError(404, f"the model {req.model!r} does not exist; this server serves "
                       f"{served.name!r}", param="model", code="model_not_found")
    if not 1 <= req.n <= served.max_n:
        raise ApiError(400, f"n must be between 1 and {served.max_n} (got {req.n})", param="n")


def create_app(served: ServedModel, batcher: Batcher) -> FastAPI:
    app = FastAPI(title="llm-jax", docs_url=None, redoc_url=None)
    page = resources.files("llm_jax.serve").joinpath("static/chat.html").read_text("utf-8")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError):
        return JSONResponse(ApiError(400, str(e.errors()[0].get("msg"))).body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        message = f"{request.method} {request.url.path}: {e.detail}"
        return JSONResponse(ApiError(e.status_code, message).body(), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, e: Exception):
        logging.getLogger(__name__).exception("%s %s failed", request.method, request.url.path)
        body = ApiError(500, f"internal error: {type(e).__name__}: {e}").body()
        return JSONResponse(body, status_code=500)

    @app.get("/", response_class=HTMLResponse)
    async def chat_page():
        return page

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [_model_card(served)]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str):
        if name != served.name:
            raise ApiError(404, f"the model {name!r} does not exist", param="model",
                           code="model_not_found")
        return _model_card(served)

    @app.get("/metrics")
    async def metrics():
        return batcher.metrics.snapshot(batcher.queued())

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        req = await _body(request, ChatRequest)
        _check_common(served, req)
        if served.template is None:
            raise ApiError(400, f"{served.name} has no chat template: use /v1/completions",
                           param="messages")
        messages = req.checked_messages()
        try:
            prompt = served.template.render_for_generation(messages, served.tokenizer)
        except (ValueError, KeyError, TypeError) as e:
            raise ApiError(400, f"messages: {e}", param="messages") from None
        stops = served.chat_stops()
        jobs = _make_jobs(served, req, [prompt], stops, tools=served.tools is not None)
        return await _respond(batcher, served, req, jobs, "chat", [len(prompt)])

    @app.post("/v1/completions")
    async def completions(request: Request):
        req = await _body(request, CompletionRequest)
        _check_common(served, req)
        tok = served.tokenizer
        prompts = [[tok.bos_id, *tok.encode(text)] for text in req.prompts()]
        jobs = _make_jobs(served, req, prompts, served.text_stops(), tools=False)
        return await _respond(batcher, served, req, jobs, "text", [len(p) for p in prompts])

    return app


def _model_card(served: ServedModel) -> dict:
    return {"id": served.name, "object": "model", "created": 0, "owned_by": "llm-jax",
            "context_length": served.max_seq_len}


def _make_jobs(served: ServedModel, req, prompts: list[list[int]], stops, tools: bool
               ) -> list[Job]:
    budgets = [_budget(served, req, len(p)) for p in prompts]
    key = GroupKey(temperature=req.temperature,
                   top_p=1.0 if req.temperature == 0 else req.top_p, stop_tokens=tuple(stops),
                   tools=tools, seed_group=None if req.seed is None else new_id("seed"))
    hidden = (*stops, served.tokenizer.pad_id)
    return [Job(prompt=list(p), max_tokens=budget, key=key, seed=req.seed,
                stream=PartStream(served.tokenizer, hidden, served.tools if tools else None,
                                  req.stop_strings()),
                deliver=lambda event: None)
            for p, budget in zip(prompts, budgets) for _ in range(req.n)]


async def _respond(batcher: Batcher, served: ServedModel, req, jobs: list[Job], kind: str,
                   prompt_lengths: list[int]):
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    for i, job in enumerate(jobs):
        job.deliver = lambda event, i=i: loop.call_soon_threadsafe(events.put_nowait, (i, event))
    batcher.submit(jobs)
    request_id = new_id("chatcmpl" if kind == "chat" else "cmpl")
    prompt_tokens = sum(prompt_lengths)
    if req.stream:
        return StreamingResponse(_stream(events, jobs, req, served, kind, request_id,
                                         prompt_tokens), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    try:
        finishes = await _collect(events, len(jobs))
    finally:
        for job in jobs:  # the client may have gone: end whatever is still running
            job.cancel()
    completion = sum(job.completion_tokens for job in jobs)
    if kind == "chat":
        choices = [{"index": i, "message": {"role": "assistant", "content": job.stream.content()},
                    "finish_reason": finishes[i], "logprobs": None}
                   for i, job in enumerate(jobs)]
        return envelope("chat.completion", request_id, served.name, choices,
                        usage=usage(prompt_tokens, completion))
    choices = [{"index": i, "text": job.stream.text(), "finish_reason": finishes[i],
                "logprobs": None} for i, job in enumerate(jobs)]
    return envelope("text_completion", request_id, served.name, choices,
                    usage=usage(prompt_tokens, completion))


async def _collect(events: asyncio.Queue, count: int) -> dict[int, str]:
    finishes: dict[int, str] = {}
    while len(finishes) < count:
        i, event = await events.get()
        if "error" in event:
            raise ApiError(500, event["error"], code="generation_failed")
        if "finish" in event:
            finishes[i] = event["finish"]
    return finishes


def _sse(payload: dict | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


async def _stream(events: asyncio.Queue, jobs: list[Job], req, served: ServedModel, kind: str,
                  request_id: str, prompt_tokens: int):
    """Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`."""
    created = int(time.time())
    name = "chat.completion.chunk" if kind == "chat" else "text_completion"

    def chunk(i: int, delta: dict | str, finish: str | None = None) -> str:
        if kind == "chat":
            choice = {"index": i, "delta": delta, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": i, "text": delta, "finish_reason": finish, "logprobs": None}
        return _sse(envelope(name, request_id, served.name, [choice], created))

    try:
        if kind == "chat":
            for i in range(len(jobs)):
                yield chunk(i, {"role": "assistant", "content": ""})
        finished = 0
        while finished < len(jobs):
            i, event = await events.get()
            if "error" in event:
                yield _sse(ApiError(500, event["error"], code="generation_failed").body())
                break
            for part in event.get("parts", ()):
                if kind != "chat":
                    yield chunk(i, part["text"])
                elif part["type"] == "text":
                    yield chunk(i, {"content": part["text"]})
                else:  # a tool call or its output: a content part of its own type
                    yield chunk(i, {"content": [part]})
            if "finish" in event:
                finished += 1
                yield chunk(i, {} if kind == "chat" else "", event["finish"])
        if req.wants_usage_chunk():
            completion = sum(job.completion_tokens for job in jobs)
            yield _sse(envelope(name, request_id, served.name, [], created,
                                usage=usage(prompt_tokens, completion)))
        yield _sse("[DONE]")
    finally:
        for job in jobs:  # a client that disconnected mid-stream frees its rows
            job.cancel()
