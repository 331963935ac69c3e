"""The reward-model stage end to end: 2 iterations from a preference file and from the built-in
gold-labelled set (cached, read back without sampling), checkpoints a scorer can load, user
errors."""

import json
import math
from pathlib import Path

import pytest

from llm_jax.checkpoints.sources import chat_template_for, load_tokenizer
from llm_jax.cli import main
from llm_jax.config import get_experiment_config
from llm_jax.recipes.preference_sets import load_preference_sets
from llm_jax.rl.reward_model import load_reward_model
from llm_jax.tracking.metrics_log import metrics_by_step

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = str(ROOT / "experiments/rm_tiny.py")
TINY = ["--config.data.batch_size=8", "--config.train.steps=2", "--config.train.log_every=1",
        "--config.train.eval_every=0", "--config.train.eval_at_start=false",
        "--config.train.checkpoint_every=1", "--config.wandb.mode=offline",
        "--config.optim.lr=1e-3", "--config.optim.warmup_steps=0"]
# The built-in set, small: 6 replies of 12 tokens to each prompt. The 4-step parent mostly
# writes byte soup the gold judge scores 0, so every prompt is needed for a few pairs.
TINY_GOLD = ["--config.preferences.responses_per_prompt=6",
             "--config.preferences.max_new_tokens=12"]
TOPICS = ["the sea", "the moon", "a garden", "winter", "music", "a cat", "the river",
          "a storm", "bread", "a letter", "the sun", "a forest"]


def write_preferences(path: Path) -> Path:
    """12 explicit-layout pairs on 12 prompts: a topical reply beats a repetitive one."""
    with path.open("w") as f:
        for i, topic in enumerate(TOPICS):
            record = {"prompt": f"Tell me about {topic}.",
                      "chosen": f"{topic.capitalize()} is lovely.",
                      "rejected": "the the the the"}
            if i % 2:
                record["margin"] = 0.5  # TRL's per-pair margin, read from the record
            f.write(json.dumps(record) + "\n")
    return path


def train_reward_model(run_dir: Path, parent: Path, prefs: Path, *extra: str) -> Path:
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir), *TINY,
            f"--config.init.from_run={parent}", f"--config.data.train_paths={prefs}",
            "--config.preferences.heldout_fraction=0.25", *extra]
    assert main(argv) == 0
    return run_dir


@pytest.mark.slow
def test_two_iterations_from_a_preference_file(tiny_pretrained_run, tmp_path):
    run_dir = train_reward_model(tmp_path / "rm", tiny_pretrained_run,
                                 write_preferences(tmp_path / "prefs.jsonl"))
    logged = metrics_by_step(run_dir)
    for step in (1, 2):
        for key in ("loss", "accuracy", "margin", "mean_reward", "reward_std", "grad_norm"):
            assert math.isfinite(logged[step][key]), (step, key)
    assert {"eval/accuracy", "eval/margin", "eval/loss", "eval/mean_reward",
            "eval/reward_std"} <= set(logged[2])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["train_pairs"], summary["heldout_pairs"]) == (9, 3)  # 3 of 12 prompts held out
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["stage"] == "reward_model" and saved["parent"]["kind"] == "run"

    rm, params, tokenizer, _ = load_reward_model(run_dir)
    assert set(params) == {"transformer", "head"}
    assert "lm_head" not in params["transformer"] and "embed" in params["transformer"]
    assert params["head"]["score"]["kernel"].shape == (rm.cfg.d_model, 1)
    assert tokenizer.vocab_size <= rm.cfg.vocab_size


@pytest.mark.slow
def test_builtin_gold_set_is_cached_and_read_back_on_resume(tiny_pretrained_run, tmp_path):
    run_dir = tmp_path / "rm_gold"
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir), *TINY, *TINY_GOLD,
            f"--config.init.from_run={tiny_pretrained_run}"]
    assert main(argv) == 0
    cache = run_dir / "preferences"
    train = (cache / "train.jsonl").read_text()
    pairs = [json.loads(line) for line in train.splitlines()]
    assert pairs and all(p["meta"]["gold_chosen"] > p["meta"]["gold_rejected"] for p in pairs)
    heldout = [json.loads(x) for x in (cache / "heldout.jsonl").read_text().splitlines()]
    assert {p["prompt"][0]["content"] for p in heldout}.isdisjoint(
        p["prompt"][0]["content"] for p in pairs)
    assert json.loads((run_dir / "summary.json").read_text())["train_pairs"] == len(pairs)

    # A resumed run reads these pairs back instead of sampling again (it has no parent to).
    config = get_experiment_config(EXPERIMENT, argv[4:])

    def no_parent():
        raise AssertionError("sampled again")

    sets = load_preference_sets(config, run_dir, load_tokenizer(run_dir),
                                chat_template_for(run_dir), no_parent)
    assert sets.source == "builtin"
    assert [(p.chosen, p.rejected, p.meta["gold_chosen"]) for p in sets.train] == [
        (p["chosen"], p["rejected"], p["meta"]["gold_chosen"]) for p in pairs]
    assert len(sets.heldout) == len(heldout)


def test_user_errors_are_one_line(tiny_pretrained_run, tmp_path, capsys):
    base = ["train", EXPERIMENT, "--workdir", str(tmp_path / "bad"), *TINY,
            f"--config.init.from_run={tiny_pretrained_run}"]
    assert main([*base, f"--config.data.train_paths={tmp_path / 'missing.jsonl'}"]) == 1
    assert "missing.jsonl: no such file" in capsys.readouterr().err
    assert main([*base, "--config.preferences.responses_per_prompt=1"]) == 2
    assert "responses_per_prompt=1" in capsys.readouterr().err
    assert main([*base, "--config.lora.rank=4"]) == 2
