"""The RL stage: the first update's ratio, 2-iteration runs of each algorithm, kill -9 resume."""

import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.generate.sampler import Sampler, SamplingConfig
from llm_jax.losses.policy import PolicyLossConfig
from llm_jax.rl.experience import drop_silent_rows, learner_batch, trim_completions
from llm_jax.rl.learners.policy_gradient import policy_gradient_loss
from llm_jax.tracking.metrics_log import metrics_by_step
from tests.helpers import random_params, tiny_config

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = str(ROOT / "experiments/grpo_math_tiny.py")
TINY_RL = [
    "--config.rl.prompts_per_iteration=4", "--config.rl.group_size=4",
    "--config.rl.max_new_tokens=8", "--config.rl.task.levels=(1,)",
    "--config.rl.task.eval_problems=4", "--config.evals.problems.samples=2",
    "--config.evals.problems.ks=(1,2)",
    "--config.rl.task.report_levels=(2,)", "--config.rl.task.report_problems=2",
    "--config.evals.problems.max_new_tokens=0",
    "--config.rl.reward=tests.rl.letter_reward:e_share", "--config.rl.temperature=1.5",
    "--config.train.eval_every=2", "--config.train.eval_at_start=false",
    "--config.train.checkpoint_every=1", "--config.train.sample_every=1",
    "--config.wandb.mode=offline", "--config.optim.lr=1e-3",
]
# GRPO with k3 KL, 2 epochs × 2 minibatches and dynamic sampling runs in the kill -9 test.
ALGORITHMS = {
    "dr_grpo_kl": ["--config.rl.advantage=dr_grpo", "--config.rl.aggregation=dr_grpo",
                   "--config.rl.kl_coef=0.1", "--config.rl.kl_bias_correction=true",
                   "--config.rl.tempered_logprobs=true", "--config.rl.step_credit=false"],
    # rloo with per-token advantages from the first wrong line (rl.step_credit, the default)
    "rloo": ["--config.rl.advantage=rloo", "--config.rl.aggregation=sequence_mean"],
    "gspo": ["--config.rl.importance=sequence", "--config.rl.aggregation=sequence_mean",
             "--config.rl.step_credit=false"],
    "rft": ["--config.rl.algorithm=rft", "--config.rl.step_credit=false"],
}


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_first_update_ratio_is_exactly_one(temperature):
    """At temperature T the sampler returns the tempered policy's log-probs and the trainer
    computes the same ones (TRL's convention, `rl.tempered_logprobs`)."""
    cfg = tiny_config("llama")
    model, params = random_params(cfg, seed=3)
    rollout = Sampler(model).generate(params, [[5, 6, 7], [9, 10]], jax.random.PRNGKey(0),
                                      SamplingConfig(max_new_tokens=6, n=4,
                                                     temperature=temperature,
                                                     logprob_temperature=temperature))
    batch = {k: jnp.asarray(v) for k, v in learner_batch(rollout).items()}
    batch["advantages"] = jnp.asarray(np.random.default_rng(0).normal(size=8), jnp.float32)
    loss_fn = jax.jit(policy_gradient_loss(model, PolicyLossConfig(), temperature))
    if temperature != 1.0:  # the untempered trainer disagrees with them: the check has teeth
        _, untempered = jax.jit(policy_gradient_loss(model, PolicyLossConfig()))(
            params, {**batch, "fresh": jnp.ones(8)}, None)
        assert float(untempered["sampler_logprob_diff"]) > 1e-2

    _, fresh = loss_fn(params, {**batch, "fresh": jnp.ones(8)}, None)
    assert float(fresh["ratio_min"]) == 1.0 and float(fresh["ratio_max"]) == 1.0
    assert float(fresh["clip_ratio/region_mean"]) == 0.0
    # the sampler's own log-probs agree with the trainer's to float rounding
    assert 0 <= float(fresh["sampler_logprob_diff"]) < 1e-5
    _, behaviour = loss_fn(params, {**batch, "fresh": jnp.zeros(8)}, None)
    assert abs(float(behaviour["ratio_min"]) - 1) < 1e-5
    assert abs(float(behaviour["ratio_max"]) - 1) < 1e-5


def _sampled(seed: int, max_new_tokens: int, n: int):
    """A random tiny Llama and its samples for two prompts (`n` each)."""
    model, params = random_params(tiny_config("llama"), seed=seed)
    rollout = Sampler(model).generate(params, [[5, 6, 7], [9, 10]], jax.random.PRNGKey(seed),
                                      SamplingConfig(max_new_tokens=max_new_tokens, n=n,
                                                     temperature=1.0))
    return model, params, rollout


def _assert_same_loss_and_gradient(loss_fn, params, batch: dict, smaller: dict) -> dict:
    """`smaller` (a cut-down learner batch) gives `batch`'s loss, weight and gradient, equal up
    to fp32 rounding (the forward pass runs on a different shape); returns its aux metrics."""
    as_jax = lambda b: {k: jnp.asarray(v) for k, v in b.items()}  # noqa: E731
    value = jax.jit(lambda p, b: loss_fn(p, b, None))
    grad = jax.jit(jax.grad(lambda p, b: loss_fn(p, b, None)[0]))
    full_loss, full_aux = value(params, as_jax(batch))
    small_loss, small_aux = value(params, as_jax(smaller))
    assert float(small_loss) == pytest.approx(float(full_loss), rel=1e-5, abs=1e-8)
    assert float(small_aux["weight"]) == float(full_aux["weight"])
    for a, b in zip(jax.tree.leaves(grad(params, as_jax(batch))),
                    jax.tree.leaves(grad(params, as_jax(smaller)))):
        a, b = np.asarray(a), np.asarray(b)
        # fp32 rounding: entries far below the leaf's scale cancel differently per shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())
    return {"full": full_aux, "small": small_aux}


@pytest.mark.parametrize("aggregation", ["token_mean", "sequence_mean", "dr_grpo"])
def test_dropping_zero_advantage_rows_keeps_the_loss_and_gradient(aggregation):
    model, params, rollout = _sampled(seed=4, max_new_tokens=6, n=4)
    batch = learner_batch(rollout)
    # the second group all got the same reward: advantage 0, no gradient without a KL term
    batch["advantages"] = np.array([0.9, -1.2, 0.5, 0.0, 0, 0, 0, 0], np.float32)
    batch["fresh"] = np.zeros(8, np.float32)
    batch["old_logprobs"] = batch["old_logprobs"] - 0.05 * batch["loss_mask"]  # ratio ≠ 1
    loss_cfg = PolicyLossConfig(aggregation=aggregation, max_completion_length=6)
    loss_fn = policy_gradient_loss(model, loss_cfg)

    dropped, kept = drop_silent_rows(batch, aggregation, devices=1)
    assert kept == 3 and len(dropped["loss_mask"]) == 4  # bucketed to 4, one empty row
    assert dropped["loss_mask"][3].sum() == 0
    _assert_same_loss_and_gradient(loss_fn, params, batch, dropped)

    # nothing to learn: one bucket of empty rows, zero loss, the whole weight kept
    silent, kept = drop_silent_rows({**batch, "advantages": np.zeros(8, np.float32)},
                                    aggregation, devices=2)
    assert kept == 0 and len(silent["loss_mask"]) == 2 and silent["loss_mask"].sum() == 0
    silent = {k: jnp.asarray(v) for k, v in silent.items()}
    assert float(loss_fn(params, silent, None)[0]) == 0.0


@pytest.mark.parametrize("aggregation", ["token_mean", "sequence_mean", "dr_grpo"])
def test_trimming_empty_completion_slots_keeps_the_loss_and_gradient(aggregation):
    model, params, rollout = _sampled(seed=5, max_new_tokens=40, n=2)
    # completions that stopped early: the longest has 11 of the 40 slots
    lengths = np.array([11, 3, 7, 1], np.int32)
    rollout = dataclasses.replace(rollout, lengths=lengths,
                                  mask=(np.arange(40)[None] < lengths[:, None]).astype(np.int32))
    batch = learner_batch(rollout)
    # one sign, so the loss is not a cancellation that fp32 rounding dominates
    batch["advantages"] = np.array([0.9, 1.2, 0.5, 0.2], np.float32)
    batch["fresh"] = np.zeros(4, np.float32)
    batch["old_logprobs"] = batch["old_logprobs"] - 0.05 * batch["loss_mask"]  # ratio ≠ 1
    batch["ref_logprobs"] = batch["old_logprobs"] + 0.1 * batch["loss_mask"]  # a KL term too
    prompt = batch["tokens"].shape[1] - 40

    trimmed = trim_completions(batch)
    assert trimmed["loss_mask"].shape == (4, 16)  # 11 rounded up to a bucket
    assert trimmed["ref_logprobs"].shape == (4, 16) and trimmed["tokens"].shape == (4, prompt + 16)
    np.testing.assert_array_equal(trimmed["tokens"], batch["tokens"][:, :prompt + 16])
    np.testing.assert_array_equal(trimmed["advantages"], batch["advantages"])
    assert trimmed["loss_mask"].sum() == batch["loss_mask"].sum()  # no sampled token is cut

    loss_cfg = PolicyLossConfig(aggregation=aggregation, max_completion_length=40, kl_coef=0.1)
    loss_fn = policy_gradient_loss(model, loss_cfg)
    aux = _assert_same_loss_and_gradient(loss_fn, params, batch, trimmed)
    assert float(aux["small"]["kl"]) == pytest.approx(float(aux["full"]["kl"]), rel=1e-5)

    # a completion that fills its slots leaves the batch as it was
    full = dataclasses.replace(rollout, lengths=np.full(4, 40, np.int32),
                               mask=np.ones((4, 40), np.int32))
    untouched = learner_batch(full)
    assert trim_completions(untouched) is untouched


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_two_iterations_of_each_algorithm(algorithm, tiny_pretrained_run, tmp_path):
    from llm_jax.cli import main

    run_dir = tmp_path / algorithm
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir), "--config.train.steps=2",
            f"--config.init.from_run={tiny_pretrained_run}", *TINY_RL, *ALGORITHMS[algorithm]]
    assert main(argv) == 0
    rows = metrics_by_step(run_dir)
    for step in (1, 2):
        row = rows[step]
        for key in ("reward", "reward_std", "completions/mean_length", "frac_reward_zero_std",
                    "completions/clipped_ratio", "entropy", "loss", "time/rollout",
                    "time/learner"):
            assert np.isfinite(row[key]), (step, key)
    assert {"eval/accuracy", "eval/pass@1", "eval/pass@2", "eval/response_length",
            # the level reported beside the task's (greedy only: pass@k is the task's)
            "eval/accuracy/level_1", "eval/accuracy/level_2"} <= set(rows[2])
    assert not any(key.startswith("eval/pass@2/level") for key in rows[2])
    if algorithm == "rft":
        assert all(rows[s]["rft/kept"] > 0 for s in (1, 2))
        return
    assert rows[1]["reward_std"] > 0 and rows[1]["grad_norm"] > 0
    assert rows[1]["updates"] == 1.0
    # sampled at T = 1.5, the sampler's and the trainer's log-probs agree, whether both are
    # the tempered policy's (dr_grpo_kl: rl.tempered_logprobs) or the model's at T = 1
    assert rows[1]["sampler_logprob_diff"] < 1e-4
    if "kl" in algorithm:
        assert "time/reference" in rows[1] and np.isfinite(rows[2]["kl"])
    samples = (run_dir / "samples.jsonl").read_text().splitlines()
    assert len(samples) >= 2


GRPO_K3 = ["--config.train.steps=4", "--config.rl.kl_coef=0.1", "--config.rl.epochs=2",
           "--config.rl.minibatches=2", "--config.train.eval_every=0",
           # dynamic sampling on a reward that leaves about half the groups all-equal
           "--config.rl.refill_rounds=2",
           "--config.rl.reward=tests.rl.letter_reward:e_share_even_prompts"]


def _command(run_dir: Path, parent: Path) -> list[str]:
    return [sys.executable, "-m", "llm_jax.cli", "train", EXPERIMENT, "--workdir", str(run_dir),
            f"--config.init.from_run={parent}", *TINY_RL, *GRPO_K3]


@pytest.mark.slow
def test_kill_9_mid_iteration_then_rerun_continues_exactly(tiny_pretrained_run, tmp_path):
    """GRPO with k3 KL, 2 epochs × 2 minibatches and dynamic sampling: run straight through
    (in this process), then killed during iteration 3 and rerun: iterations 3 and 4 are the
    same to the bit."""
    from llm_jax.cli import main

    assert main(_command(tmp_path / "ref", tiny_pretrained_run)[3:]) == 0

    crashed = tmp_path / "crashed"
    proc = subprocess.Popen(_command(crashed, tiny_pretrained_run), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (crashed / "checkpoints" / "2").is_dir():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # during iteration 3's rollout or update
    proc.wait(timeout=60)
    assert not (crashed / "checkpoints" / "4").exists(), "finished before the kill"
    rerun = subprocess.run(_command(crashed, tiny_pretrained_run), cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from iteration" in rerun.stderr

    ref, got = metrics_by_step(tmp_path / "ref"), metrics_by_step(crashed)
    assert sorted(got) == sorted(ref) == [1, 2, 3, 4]
    assert ref[1]["updates"] == 4.0 and ref[1]["reward_std"] > 0 and "time/reference" in ref[1]
    # dynamic sampling refilled all-equal groups with informative ones
    refilled = [s for s in ref if ref[s].get("dynamic/rounds", 0) >= 1]
    assert refilled
    assert all(ref[s]["dynamic/frac_zero_std_after"] < ref[s]["frac_reward_zero_std"]
               for s in refilled)
    for step in (3, 4):
        for key in ("reward", "loss", "kl", "entropy", "grad_norm", "param_norm",
                    "dynamic/rounds", "dynamic/frac_zero_std_after"):
            assert got[step].get(key) == ref[step].get(key), (step, key)
    assert got[4]["eval/accuracy"] == ref[4]["eval/accuracy"]


def test_merge_groups_takes_whole_groups_and_pads_prompts():
    from llm_jax.generate.sampler import Rollout
    from llm_jax.rl.experience import Sampled, merge_groups
    from llm_jax.rl.rewards import RewardInfo

    def part(width, base, rewards):
        rows = len(rewards)
        rollout = Rollout(
            prompt_tokens=np.full((rows, width), base, np.int32),
            prompt_mask=np.ones((rows, width), np.int32),
            tokens=np.arange(rows * 3, dtype=np.int32).reshape(rows, 3) + base,
            logprobs=np.zeros((rows, 3), np.float32), mask=np.ones((rows, 3), np.int32),
            lengths=np.full(rows, 3, np.int32), finish_reason=np.zeros(rows, np.int32),
            prompt_index=np.arange(rows, dtype=np.int32) // 2)
        flags = np.asarray(rewards) > 0
        info = RewardInfo(np.asarray(rewards, np.float32), flags, flags, flags, ~flags)
        return Sampled(rollout, [f"{base}:{i}" for i in range(rows)],
                       [f"problem {base}:{i // 2}" for i in range(rows)],
                       [{"row": i} for i in range(rows)], info)

    first = part(2, 100, [0, 0, 1, 0])  # group 0 all-equal, group 1 informative
    refill = part(4, 200, [1, 0, 1, 1])  # both informative
    merged = merge_groups([first, refill], [(0, 1), (1, 0)], 2, pad_id=9)
    assert merged.texts == ["100:2", "100:3", "200:0", "200:1"]
    assert merged.rows == ["problem 100:1", "problem 100:1", "problem 200:0", "problem 200:0"]
    np.testing.assert_array_equal(merged.info.rewards, [1, 0, 1, 0])
    np.testing.assert_array_equal(merged.rollout.prompt_index, [0, 0, 1, 1])
    # the narrower part's prompts are left-padded to the widest, masked out
    np.testing.assert_array_equal(merged.rollout.prompt_tokens[0], [9, 9, 100, 100])
    np.testing.assert_array_equal(merged.rollout.prompt_mask[0], [0, 0, 1, 1])
    np.testing.assert_array_equal(merged.rollout.tokens[2], refill.rollout.tokens[0])
