"""`llm-jax rank` on the tiny pretrained run, answered through stdin (then a fake `input`):
bad orderings are asked again, skip, quit, end of input and Ctrl-C stop cleanly, every
ranking survives, and a resumed session skips ranked prompts and shows the same replies."""

import io
import json
import re

import pytest

from llm_jax.cli import main
from llm_jax.commands.rank import parse_ordering, ranked_prompts, repair_tail
from llm_jax.data.preferences import read_preferences

PROMPTS = ["It is a truth", "In the beginning", "She was", "The sea"]


@pytest.fixture
def load_once(monkeypatch):
    """Sessions after the first reuse the loaded model and its compiled sampler (the same
    objects a fresh load would give), so the test spends its time ranking, not compiling."""
    import llm_jax.commands.rank as rank
    import llm_jax.generate.sampler as sampler_module  # rank imports Sampler from it per call

    loaded, samplers = {}, {}
    real_load, real_sampler = rank._load, sampler_module.Sampler

    def load(args):
        if args.run_dir not in loaded:
            loaded[args.run_dir] = real_load(args)
        return loaded[args.run_dir]

    def sampler(model):
        if id(model) not in samplers:
            samplers[id(model)] = real_sampler(model)
        return samplers[id(model)]

    monkeypatch.setattr(rank, "_load", load)
    monkeypatch.setattr(sampler_module, "Sampler", sampler)
    return loaded


def _session(run, prompts, out, typed, monkeypatch, capsys):
    """One `llm-jax rank` run answering with the `typed` lines, then Ctrl-C."""
    lines = iter(typed)

    def answer(prompt=""):
        try:
            return next(lines)
        except StopIteration:
            raise KeyboardInterrupt from None

    monkeypatch.setattr("builtins.input", answer)
    code = main(["rank", str(run), "--prompts", str(prompts), "--out", str(out), "--k", "3",
                 "--max-new-tokens", "6", "--temperature", "1.0"])
    return code, capsys.readouterr().out


def _shown(output, prompt):
    """The replies a session showed for a prompt."""
    block = output.split(f"\n{prompt}\n", 1)[1]
    return re.findall(r"^\[\d\] (.*)$", block, re.MULTILINE)[:3]


def test_rank_resumes_and_keeps_every_ranking(tiny_pretrained_run, tmp_path, monkeypatch,
                                              capsys, load_once):
    prompts, out = tmp_path / "prompts.txt", tmp_path / "rankings.jsonl"
    prompts.write_text("\n".join(PROMPTS) + "\n\n")
    # Session 1, through stdin: two bad orderings are asked again; two prompts ranked; then
    # end of input.
    monkeypatch.setattr("sys.stdin", io.StringIO("bad\n1 1 2\n2 1 3\n3,1,2\n"))
    code = main(["rank", str(tiny_pretrained_run), "--prompts", str(prompts), "--out",
                 str(out), "--k", "3", "--max-new-tokens", "6", "--temperature", "1.0"])
    text = capsys.readouterr().out
    assert code == 0
    assert text.count("give each of 1..3 once") == 2
    assert "end of input: 2 ranking(s) saved this session, 2 of 4 prompts ranked" in text
    # Session 2: resumes at prompt 3, skips it, quits at prompt 4.
    code, text2 = _session(tiny_pretrained_run, prompts, out, ["s", "q"], monkeypatch, capsys)
    assert code == 0 and "2 of 4 prompts already ranked" in text2
    assert PROMPTS[0] not in text2 and PROMPTS[1] not in text2 and PROMPTS[3] in text2
    assert "quit: 0 ranking(s) saved this session, 2 of 4" in text2
    # Session 3: the skipped prompt comes back with the same replies; Ctrl-C at prompt 4 is
    # a clean stop (exit 130) that keeps what was saved.
    code, text3 = _session(tiny_pretrained_run, prompts, out, ["3 2 1"], monkeypatch, capsys)
    assert code == 130 and len(_shown(text2, PROMPTS[2])) == 3
    assert _shown(text3, PROMPTS[2]) == _shown(text2, PROMPTS[2])
    assert text3.strip().splitlines()[-1] == (
        f"interrupted: 1 ranking(s) saved this session, 3 of 4 prompts ranked in {out}")
    # Session 4 ranks the last prompt; session 5 finds nothing left and asks nothing.
    code, text4 = _session(tiny_pretrained_run, prompts, out, ["1 2 3"], monkeypatch, capsys)
    assert code == 0 and "done: 1 ranking(s) saved this session, 4 of 4" in text4
    assert _shown(text4, PROMPTS[3]) == _shown(text2, PROMPTS[3])
    code, text5 = _session(tiny_pretrained_run, prompts, out, [], monkeypatch, capsys)
    assert code == 0 and "all 4 prompts" in text5
    assert len(load_once) == 1   # the model loaded once, through the command's own loader

    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in records] == PROMPTS
    assert [r["ranking"] for r in records] == [[1, 0, 2], [2, 0, 1], [2, 1, 0], [0, 1, 2]]
    assert all(len(r["responses"]) == 3 and r["seed"] == 0 and r["time"].endswith("Z")
               and r["model"] == str(tiny_pretrained_run.absolute()) for r in records)
    # The file is preference data: each ranking of 3 distinct replies gives 3 pairs.
    pairs = list(read_preferences([str(out)]))
    distinct = sum(len({s.strip() for s in r["responses"]}) == 3 for r in records)
    assert len(pairs) >= 3 * distinct and pairs[0].meta["model"] == records[0]["model"]


def test_parse_ordering():
    assert parse_ordering(" 3 1 2 ", 3) == [2, 0, 1]
    assert parse_ordering("2,1", 2) == [1, 0]
    assert parse_ordering("S", 3) == "s" and parse_ordering("q", 3) == "q"
    for bad in ("", "1 2", "1 2 4", "1 1 2", "a b c", "1 2 3 4"):
        with pytest.raises(ValueError, match="each of 1..3 once"):
            parse_ordering(bad, 3)


def test_torn_last_line_is_dropped(tmp_path):
    out = tmp_path / "r.jsonl"
    good = json.dumps({"prompt": "a", "responses": ["x", "y"], "ranking": [0, 1]})
    out.write_text(good + "\n" + '{"prompt": "b", "respo')
    repair_tail(out)
    assert out.read_text() == good + "\n"
    assert ranked_prompts(out) == {"a"}
    out.write_text(good)   # a whole record missing only its newline is kept
    repair_tail(out)
    assert out.read_text() == good + "\n"
