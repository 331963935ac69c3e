"""The OpenAI API against a live server: the official client, greedy parity with
`llm-jax sample`, batching under concurrency, bad input, and a client that goes away."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from llm_jax.cli import main

PROMPTS = [f"{word} was the" for word in (
    "It", "She", "Catherine", "Henry", "The morning", "Her mother", "Mrs. Allen", "Bath",
    "A letter", "The abbey", "John Thorpe", "Isabella", "Eleanor", "General Tilney",
    "The carriage", "Their walk")]


@pytest.fixture(scope="module")
def client(live_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server.url + "/v1", api_key="unused", max_retries=0,
                         timeout=120)


@pytest.fixture(scope="module")
def http(live_server):
    with httpx.Client(base_url=live_server.url, timeout=120) as c:
        yield c


def model_name(live_server) -> str:
    return live_server.served.name


def test_models_lists_the_served_model(client, live_server):
    assert [m.id for m in client.models.list().data] == [model_name(live_server)]


def test_greedy_completion_equals_llm_jax_sample(client, live_server, tiny_hf_folder, capsys):
    prompt = "It is a truth universally"
    out = client.completions.create(model=model_name(live_server), prompt=prompt,
                                    max_tokens=8, temperature=0)
    choice = out.choices[0]
    assert choice.finish_reason in ("stop", "length")
    assert 1 <= out.usage.completion_tokens <= 8 and out.usage.prompt_tokens > 1
    capsys.readouterr()
    assert main(["sample", "--hf", str(tiny_hf_folder), "--prompt", prompt,
                 "--max-new-tokens", "8", "--temperature", "0"]) == 0
    sampled = capsys.readouterr().out.split("\n", 1)[1].rstrip("\n")
    assert prompt + choice.text == sampled


def test_chat_stream_equals_the_whole_reply(client, live_server):
    request = dict(model=model_name(live_server), max_tokens=10, temperature=0,
                   messages=[{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "Who is Catherine?"}])
    whole = client.chat.completions.create(**request)
    reply = whole.choices[0].message.content
    assert isinstance(reply, str) and reply and whole.choices[0].message.role == "assistant"
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    chunks = list(client.chat.completions.create(**request, stream=True,
                                                 stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks
              if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 2, "the reply must arrive in several chunks"
    assert "".join(pieces) == reply
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == whole.choices[0].finish_reason and finish[:-1] == [None] * (
        len(finish) - 1)
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_n_choices_and_stop_strings(client, live_server):
    name = model_name(live_server)
    out = client.chat.completions.create(model=name, n=3, max_tokens=8, temperature=0,
                                         messages=[{"role": "user", "content": "Hello"}])
    assert [c.index for c in out.choices] == [0, 1, 2]
    assert len({c.message.content for c in out.choices}) == 1  # greedy: n equal choices
    text = client.completions.create(model=name, prompt="She was", max_tokens=8,
                                     temperature=0).choices[0].text
    stop = text[4:6]
    cut = client.completions.create(model=name, prompt="She was", max_tokens=8,
                                    temperature=0, stop=[stop]).choices[0]
    assert cut.text == text[:text.index(stop)] and cut.finish_reason == "stop"


def test_a_seed_makes_a_sampled_reply_repeatable(client, live_server):
    ask = lambda seed: client.completions.create(  # noqa: E731
        model=model_name(live_server), prompt="She was", max_tokens=8, temperature=1.0,
        seed=seed).choices[0].text
    first = ask(7)
    assert ask(7) == first and ask(8) != first


def test_sixteen_concurrent_requests_are_batched_and_right(client, live_server, http):
    name = model_name(live_server)
    alone = [client.completions.create(model=name, prompt=p, max_tokens=8, temperature=0
                                       ).choices[0].text for p in PROMPTS]
    results: dict[int, str] = {}

    def ask(i: int) -> None:
        results[i] = client.completions.create(model=name, prompt=PROMPTS[i], max_tokens=8,
                                               temperature=0).choices[0].text

    before = http.get("/metrics").json()["batch_size_histogram"]
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(PROMPTS))] == alone
    after = http.get("/metrics").json()["batch_size_histogram"]
    grown = {int(k): v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    assert sum(k * v for k, v in grown.items()) == len(PROMPTS)
    assert max(grown) > 1, f"no batch held more than one request: {grown}"


# A greedy request that runs long enough to leave or join mid-way (one compiled shape for both).
LONG = {"prompt": "In the morning", "max_tokens": 200, "temperature": 0}

BAD = [
    ("malformed JSON", "/v1/chat/completions", '{"model": "tiny-chat", "messages": [', 400,
     "malformed JSON"),
    ("unknown role", "/v1/chat/completions",
     {"messages": [{"role": "wizard", "content": "hi"}]}, 400, "unknown role 'wizard'"),
    ("prompt longer than the context", "/v1/completions", {"prompt": "the end " * 700},
     400, "context is 1024 tokens"),
    ("max_tokens 0", "/v1/completions", {"prompt": "hi", "max_tokens": 0}, 400, "max_tokens"),
    ("max_tokens < 0", "/v1/chat/completions",
     {"messages": [{"role": "user", "content": "hi"}], "max_tokens": -3}, 400, "max_tokens"),
    ("n too large", "/v1/completions", {"prompt": "hi", "n": 99}, 400, "n must be between"),
    ("wrong model", "/v1/completions", {"prompt": "hi", "model": "gpt-17"}, 404,
     "'gpt-17' does not exist"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_gets_an_openai_error_and_the_server_goes_on(case, http, live_server):
    _, path, body, status, words = case
    if isinstance(body, dict):
        body = json.dumps({"model": model_name(live_server), **body})
    response = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error["message"] and error["type"] == "invalid_request_error"
    ok = http.post("/v1/completions", json={"model": model_name(live_server), "prompt": "So",
                                            "max_tokens": 2})
    assert ok.status_code == 200 and len(ok.json()["choices"]) == 1


def test_a_client_leaving_mid_stream_frees_its_slot(http, live_server):
    before = http.get("/metrics").json()
    body = {**LONG, "model": model_name(live_server), "stream": True}
    with httpx.Client(base_url=live_server.url, timeout=60) as leaving:
        with leaving.stream("POST", "/v1/completions", json=body) as response:
            got = 0
            for line in response.iter_lines():
                got += line.startswith("data:")
                if got == 3:  # a few tokens in, the client goes away
                    break
    deadline = time.monotonic() + 20
    while (m := http.get("/metrics").json())["active_rows"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert m["active_rows"] == 0 and m["cancelled_rows"] == before["cancelled_rows"] + 1
    assert m["completion_tokens"] - before["completion_tokens"] < LONG["max_tokens"]
    ok = http.post("/v1/completions", json={"model": model_name(live_server), "prompt": "So",
                                            "max_tokens": 2})
    assert ok.status_code == 200


def test_a_request_joins_a_running_batch_and_nothing_changes(http, live_server):
    """A short request sent while a long one decodes is answered before the long one ends;
    the long one, carried into the joined batch, still gives its greedy text."""
    name = model_name(live_server)
    long_body = {**LONG, "model": name}
    alone = http.post("/v1/completions", json=long_body).json()["choices"][0]["text"]
    joined_before = http.get("/metrics").json()["rows"]
    done: dict[str, float] = {}

    def long_request() -> None:
        done["text"] = http.post("/v1/completions", json=long_body).json()["choices"][0]["text"]
        done["long"] = time.monotonic()

    thread = threading.Thread(target=long_request)
    thread.start()
    deadline = time.monotonic() + 30
    while not http.get("/metrics").json()["active_rows"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    short = http.post("/v1/completions", json={"model": name, "prompt": "Yes", "max_tokens": 3,
                                               "temperature": 0})
    short_done = time.monotonic()
    thread.join()
    assert short.status_code == 200 and short_done < done["long"]
    assert done["text"] == alone
    rows = http.get("/metrics").json()["rows"] - joined_before
    assert rows >= 3, "the long request was not carried into a joined batch"


def test_a_reply_longer_than_one_batch_allows_continues_in_the_next(http, live_server,
                                                                   tiny_hf_folder, capsys):
    """Near the end of the context a batch's decode budget is rounded down to a compiled size;
    the row goes on in the next batch and the greedy text is what `llm-jax sample` gives."""
    tok, context = live_server.served.tokenizer, live_server.served.max_seq_len
    k = 1
    while len(tok.encode("the end " * (k + 1))) + 1 <= context - 5:
        k += 1
    prompt = "the end " * k
    room = context - 1 - len(tok.encode(prompt))
    assert 5 <= room and room & (room - 1), room  # not a power of two: the budget is cut
    before = http.get("/metrics").json()["rows"]
    out = http.post("/v1/completions", json={"model": model_name(live_server), "prompt": prompt,
                                             "max_tokens": room, "temperature": 0}).json()
    assert http.get("/metrics").json()["rows"] - before >= 2  # it took more than one batch
    capsys.readouterr()
    assert main(["sample", "--hf", str(tiny_hf_folder), "--prompt", prompt,
                 "--max-new-tokens", str(room), "--temperature", "0"]) == 0
    sampled = capsys.readouterr().out.split("\n", 1)[1].rstrip("\n")
    assert prompt + out["choices"][0]["text"] == sampled
