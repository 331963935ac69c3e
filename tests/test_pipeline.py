"""Pipelines: the speedrun's stages planned from the command line, and run end to end at toy
size, stopped after one stage, failing in the next, then resumed to the end."""

import json
import logging
import re
from pathlib import Path

import pytest

from llm_jax.cli import main
from llm_jax.errors import ConfigError
from llm_jax.pipeline import PREVIOUS, Stage, StageDir, plan_pipeline

ROOT = Path(__file__).resolve().parents[1]
SPEEDRUN = str(ROOT / "experiments/speedrun_tiny.py")
# Every stage a few seconds: a d=64 model, 2 iterations each, tiny evaluations.
TINY = [
    "--config.model.d_model=64", "--config.model.n_layers=2", "--config.model.n_heads=4",
    "--config.model.max_seq_len=128", "--config.data.seq_len=64", "--config.data.batch_size=8",
    "--config.data.vocab_size=384", "--config.train.steps=2", "--config.train.eval_batches=1",
    "--config.train.log_every=1", "--config.train.checkpoint_every=2",
    "--config.train.sample_tokens=6", "--config.wandb.mode=offline",
    "--config.sft.mixture_size=40", "--config.sft.eval_size=3", "--config.sft.eval_math=3",
    "--config.evals.chat.max_new_tokens=8", "--config.rl.prompts_per_iteration=4",
    "--config.rl.group_size=4", "--config.rl.max_new_tokens=8",
    "--config.rl.task.eval_problems=4", "--stage.grpo.train.sample_every=1",
    "--config.rl.task.report_levels=()", "--config.evals.problems.max_new_tokens=0",
]


def _tiny(corpus, test_corpus) -> list[str]:
    # The corpus is pretraining's only: SFT would read data.train_paths as conversations.
    return [*TINY, f"--stage.pretrain.data.train_paths={corpus['train']}",
            f"--stage.pretrain.data.val_paths={corpus['val']}",
            f"--config.sft.books={test_corpus / 'persuasion.txt'}"]


def _write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "experiments" / "pipe.py"
    path.parent.mkdir(exist_ok=True)
    for name in ("pretrain_tiny.py", "sft_tiny.py", "grpo_math_tiny.py"):
        (path.parent / name).write_text((ROOT / "experiments" / name).read_text())
    path.write_text("from llm_jax.pipeline import Stage, StageDir\n\n" + body)
    return str(path)


def test_speedrun_plan_wires_each_stage_to_its_parent(tmp_path):
    plan = plan_pipeline(SPEEDRUN, ["--config.train.steps=3", "--stage.grpo.train.steps=1",
                                    "--config.model.d_model=64"], tmp_path / "p")
    assert [(p.name, p.trainer) for p in plan.stages][:3] == [
        ("pretrain", "pretrain"), ("sft", "sft"), ("grpo", "rl")]
    pre, sft, grpo = plan.stages[:3]
    assert pre.run_dir.path == tmp_path / "p" / "01-pretrain"
    assert pre.config.init.from_run == "" and pre.parent_dir is None
    assert sft.config.init.from_run == str(pre.run_dir.path)
    assert grpo.config.init.from_run == str(sft.run_dir.path)
    # --config applies where the key exists (the child stages inherit the architecture);
    # --stage.NAME wins over --config for that stage
    assert pre.config.model.d_model == 64 and "d_model" not in sft.config.model
    assert (pre.config.train.steps, sft.config.train.steps, grpo.config.train.steps) == (3, 3, 1)
    assert grpo.config.evals.problems.samples == 0  # the stage's own override from pipeline()
    assert {p.config.wandb.group for p in plan.stages} == {"speedrun_tiny/p"}
    assert all(p.status() == "to run" for p in plan.stages)


def test_stage_dir_references_and_explicit_parents(tmp_path):
    spec = _write(tmp_path, (
        "def pipeline(arg=None):\n"
        "    return [('base', 'pretrain_tiny.py'),\n"
        "            Stage('chat', 'sft_tiny.py', {'train.steps': 5}),\n"
        "            Stage('math', 'grpo_math_tiny.py',\n"
        "                  {'rl.reward': StageDir('chat')}, parent='base')]\n"))
    plan = plan_pipeline(spec, [], tmp_path / "out")
    base, chat, math = plan.stages
    assert chat.config.train.steps == 5 and math.parent_dir == base.run_dir.path
    assert math.config.rl.reward == str(chat.run_dir.path)
    assert Stage("x", "y.py").parent == PREVIOUS and StageDir("x").name == "x"


@pytest.mark.parametrize("body, message", [
    ("def pipeline(arg=None):\n    return []\n", "returned no stages"),
    ("def pipeline(arg=None):\n    return [('a', 'pretrain_tiny.py'), "
     "('a', 'sft_tiny.py')]\n", "unique; repeated: a"),
    ("def pipeline(arg=None):\n    return [('a.b', 'pretrain_tiny.py')]\n", "stage name"),
    ("def pipeline(arg=None):\n    return [('a', 'pretrain_tiny.py', {}, 'z')]\n",
     "stage 'a': parent 'z' is not an earlier stage"),
    ("def pipeline(arg=None):\n    return [Stage('a', 'pretrain_tiny.py', "
     "{'rl.reward': StageDir('a')})]\n", "no earlier stage of that name"),
    ("def pipeline(arg=None):\n    return [('a', 'nowhere.py')]\n", "not found"),
])
def test_bad_declarations_are_config_errors(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        plan_pipeline(_write(tmp_path, body), [], tmp_path / "out")


@pytest.mark.parametrize("argv, message", [
    (["run", SPEEDRUN, "--dry-run", "--stage.sfft.train.steps=1"],
     "unknown pipeline stage 'sfft' (did you mean 'sft'?)"),
    (["run", SPEEDRUN, "--dry-run", "--config.train.stepz=1"],
     "unknown config key 'train.stepz' in every stage; did you mean 'train.steps'?"),
    (["run", SPEEDRUN, "--dry-run", "--stage.sft.train.steps=many"],
     "stage 'sft': config key 'train.steps' expects int"),
    (["run", SPEEDRUN, "--until", "grp"], "unknown pipeline stage 'grp'"),
    (["run", str(ROOT / "experiments/sft_tiny.py")], "declares no pipeline"),
    (["train", str(ROOT / "experiments/sft_tiny.py"), "--stage.sft.train.steps=1"],
     "overrides are for pipelines"),
])
def test_user_mistakes_are_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written anywhere
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    # wandb/ is left out: wandb's service process, shared by every run of this process, keeps
    # appending to the first run's debug log after that run finished.
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] != "wandb"}


@pytest.mark.slow
def test_speedrun_stops_fails_and_resumes_to_the_end(corpus, test_corpus, tmp_path, caplog,
                                                     capsys):
    root = tmp_path / "speedrun"
    # Through GRPO: the preference stages that follow are tested with their trainers.
    argv = ["run", SPEEDRUN, "--workdir", str(root), *_tiny(corpus, test_corpus),
            "--until", "grpo"]
    pre, sft, grpo = (root / "01-pretrain", root / "02-sft", root / "03-grpo")
    skipped = re.compile(r"stage 1/\d+ pretrain: finished earlier \(.*done.json\); skipped")

    # 1. stop after the first stage
    assert main([*argv, "--until", "pretrain"]) == 0  # the last --until wins
    done = json.loads((pre / "done.json").read_text())
    assert done["stage"] == "pretrain" and "eval_loss" in done["metrics"]
    assert done["wall_s"] > 0 and "jax" in done["environment"]
    assert not sft.exists() and (root / "report.md").is_file()
    before = _files(pre)

    # 2. the next stage fails: the finished one is skipped, the failure is one line
    caplog.set_level(logging.INFO)
    capsys.readouterr()
    assert main([*argv, f"--stage.sft.data.train_paths={tmp_path / 'missing.jsonl'}"]) == 1
    assert "missing.jsonl" in capsys.readouterr().err
    assert skipped.search(caplog.text), caplog.text
    assert not (sft / "done.json").exists()

    # 3. re-run: pretraining untouched, the rest completes, the report card is written
    caplog.clear()
    assert main(argv) == 0
    assert skipped.search(caplog.text)
    assert _files(pre) == before
    for run, trainer in ((sft, "sft"), (grpo, "rl")):
        assert json.loads((run / "done.json").read_text())["trainer"] == trainer
        assert json.loads((run / "config.json").read_text())["parent"]["path"] == \
            str({sft: pre, grpo: sft}[run].absolute())
    grpo_done = json.loads((grpo / "done.json").read_text())
    assert "eval/accuracy" in grpo_done["metrics"]
    card = (root / "report.md").read_text()
    for text in ("## Environment", "01-pretrain/report.md", "03-grpo/report.md",
                 "`eval_loss`", "`eval/accuracy`", "`chat/end_rate`", "done in"):
        assert text in card, text
    for run in (pre, sft, grpo):
        text = (run / "report.md").read_text()
        for section in ("## Environment", "## Configuration", "## Key numbers", "## Plots",
                        "## Samples"):
            assert section in text, (run, section)
        assert (run / "plots" / "loss.png").is_file() or run == grpo
    assert (grpo / "plots" / "accuracy.png").is_file()
    assert (grpo / "plots" / "length.png").is_file()
    assert "prompt" in (grpo / "report.md").read_text()
    assert f"report card: {root / 'report.md'}" in capsys.readouterr().out

    # 4. nothing left to do: every stage skipped
    caplog.clear()
    assert main(argv) == 0
    assert caplog.text.count("finished earlier") == 3


def test_train_on_a_pipeline_file_runs_the_pipeline(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a dry run is only a `run` option; `train` runs it, so stop it at planning with a typo
    assert main(["train", SPEEDRUN, "--stage.grpo.rl.kl_coeff=0.1"]) == 2
    assert "stage 'grpo': unknown config key 'rl.kl_coeff'" in capsys.readouterr().err
