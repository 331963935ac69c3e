"""Seconds per GRPO iteration (rollout + update) against TRL's GRPOTrainer on the same shape.

    python bench/rl_step.py [--iterations 16] [--no-peer]

Shape: a random Qwen2-style model (4 layers, d=256, 4 heads, MLP 1024, tied embeddings) with a
byte-level BPE tokenizer of 2048 tokens trained on Pride and Prejudice and a ChatML template,
saved as a Hugging Face folder that both sides load. One iteration: 8 arithmetic problems ×
G = 8 samples of up to 48 new tokens at temperature 1, correctness rewards, group advantages,
one optimizer update on all 64 completions, no KL (β = 0), fp32 on CPU.

Ours is `llm-jax train experiments/grpo_math_tiny.py` from that folder (the RL stage as users
run it, calculator off); its per-iteration `time/rollout` and `time/learner` come from the
run's metrics. It runs twice: as configured (rows whose advantage is 0 never reach the learner,
`rl.skip_zero_advantage`; a random model rarely gets a sum right, so most groups are all-zero)
and with every row trained on, the same work per update as the peer ("_all_rows" figures).
A third pair of figures ("_quarter_signal") replaces the correctness reward, on both sides,
with one that gives about a quarter of the groups different rewards and the rest all zeros:
the mix our arithmetic runs from a trained start show (75-88% of groups all-equal).
The peer is `trl.GRPOTrainer` with its own `generate` rollouts (no vLLM) on the same folder,
problems and batch; each step is timed by a callback. The first iteration of
each side (compilation, warm-up) is left out and the median of the rest is reported; the
mean of the rest ("_mean") also counts the compilations a new learner shape costs later (ours
compiles once per bucket of kept rows and of completion length; the persistent compilation
cache is off here, so each figure pays for its own).
Prints one JSON line per figure; the CPU model is on each line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS, GROUP, NEW_TOKENS = 8, 8, 48
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def make_folder(folder: Path) -> Path:
    """The random Hub-format model and tokenizer both sides start from."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    book = ROOT.parent / "shared/data/austen/pride_and_prejudice.txt"
    lines = [line for line in book.read_text(errors="ignore").splitlines() if line.strip()]
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(lines or ["1 + 2 = 3"], trainers.BpeTrainer(
        vocab_size=2048, special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": CHATML, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "bos_token": None, "tokenizer_class": "PreTrainedTokenizerFast"}))
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=tok.get_vocab_size(), hidden_size=256, intermediate_size=1024,
        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=512, eos_token_id=tok.token_to_id("<|im_end|>"),
        pad_token_id=tok.token_to_id("<|endoftext|>"), tie_word_embeddings=True)
    transformers.Qwen2ForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


def quarter_signal_reward(prompts, completions, meta):
    """Groups whose answer is a multiple of 4 (about a quarter) reward completions of even
    length, so their samples differ; every other group gets all zeros, as a group of wrong
    answers does. Deterministic in the text, so ours and the peer score the same batch alike."""
    import numpy as np

    return np.array([float(int(m["answer"]) % 4 == 0 and len(c) % 2 == 0)
                     for c, m in zip(completions, meta)], np.float32)


# Each scenario's reward: as our config names it, and the function the peer calls.
REWARDS = {"": "llm_jax.rl.rewards:correctness_reward",
           "_quarter_signal": "bench.rl_step:quarter_signal_reward"}


def _median_after_first(values: list[float]) -> float:
    return statistics.median(values[1:] if len(values) > 1 else values)


def _mean_after_first(values: list[float]) -> float:
    return statistics.mean(values[1:] if len(values) > 1 else values)


def bench_ours(folder: Path, iterations: int, workdir: Path, skip_zero_advantage: bool,
               scenario: str = "") -> dict:
    from llm_jax.cli import main

    run_dir = workdir / f"ours-skip{int(skip_zero_advantage)}{scenario}"
    argv = ["train", str(ROOT / "experiments/grpo_math_tiny.py"), "--workdir", str(run_dir),
            f"--config.rl.skip_zero_advantage={str(skip_zero_advantage).lower()}",
            f"--config.rl.reward={REWARDS[scenario]}",
            "--config.run.compilation_cache=",  # every figure pays its own compilations
            "--config.init.from_run=", f"--config.init.from_hf={folder}",
            "--config.model.dtype=float32", "--config.rl.tools=false",
            f"--config.rl.prompts_per_iteration={PROMPTS}", f"--config.rl.group_size={GROUP}",
            f"--config.rl.max_new_tokens={NEW_TOKENS}", "--config.rl.temperature=1.0",
            "--config.rl.task.eval_problems=1", "--config.evals.problems.samples=0",
            f"--config.train.steps={iterations}", "--config.train.eval_at_start=false",
            "--config.train.eval_every=0", "--config.train.sample_every=0",
            f"--config.train.checkpoint_every={iterations + 1}", "--config.wandb.mode=disabled"]
    if main(argv) != 0:
        raise SystemExit("our RL run failed")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "time/rollout" in r]
    rollout = _median_after_first([r["time/rollout"] for r in rows])
    learner = _median_after_first([r["time/learner"] for r in rows])
    kept = [r["learner/rows_kept"] for r in rows if "learner/rows_kept" in r]
    name = "rl_iteration_ours" + ("" if skip_zero_advantage else "_all_rows") + scenario
    total = [r["time/rollout"] + r["time/learner"] for r in rows]
    return {"figure": name, "seconds_per_iteration": rollout + learner,
            "seconds_per_iteration_mean": _mean_after_first(total),
            "rollout_s": rollout, "learner_s": learner, "iterations": len(rows),
            "learner_rows": statistics.mean(kept) if kept else PROMPTS * GROUP,
            "learner_s_each": [round(r["time/learner"], 3) for r in rows],
            "completion_tokens_mean": statistics.mean(
                r["completions/mean_length"] for r in rows)}


def bench_trl(folder: Path, iterations: int, workdir: Path, scenario: str = "") -> dict:
    import transformers
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from llm_jax.recipes.math.sources import ArithmeticTask
    from llm_jax.rl.rewards import correctness_reward

    score = quarter_signal_reward if scenario else correctness_reward

    problems = list(islice(ArithmeticTask(level=[1, 2]).problems(), PROMPTS * iterations))
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt}],
                               "answer": p.answer} for p in problems])

    def reward(prompts, completions, answer, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return score(texts, texts, [{"answer": a} for a in answer]).tolist()

    step_times: list[float] = []
    lengths: list[float] = []

    class Timer(transformers.TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            step_times.append(time.perf_counter() - self.start)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    args = GRPOConfig(
        output_dir=str(workdir / f"trl{scenario}"), per_device_train_batch_size=PROMPTS * GROUP,
        num_generations=GROUP, max_completion_length=NEW_TOKENS, temperature=1.0,
        learning_rate=2e-5, beta=0.0, num_iterations=1, max_steps=iterations,
        logging_steps=1, report_to="none", save_strategy="no", use_cpu=True, bf16=False,
        shuffle_dataset=False, seed=0)
    trainer = GRPOTrainer(model=str(folder), reward_funcs=reward, args=args, train_dataset=data,
                          callbacks=[Timer()])
    trainer.train()
    return {"figure": "rl_iteration_trl" + scenario, "seconds_per_iteration":
            _median_after_first(step_times),
            "seconds_per_iteration_mean": _mean_after_first(step_times),
            "iterations": len(step_times),
            "completion_tokens_mean": statistics.mean(lengths) if lengths else None,
            "torch_threads": __import__("torch").get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=16)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    from llm_jax.tracking.report import cpu_model

    common = {"cpu": cpu_model(), "cores": os.cpu_count(), "prompts": PROMPTS, "group": GROUP,
              "max_new_tokens": NEW_TOKENS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp) / "model")
        # (skip zero-advantage rows, reward): as configured, every row trained, realistic mix
        cases = [(True, ""), (False, ""), (True, "_quarter_signal")]
        ours = {case: bench_ours(folder, args.iterations, Path(tmp), *case) | common
                for case in cases}
        for figure in ours.values():
            print(json.dumps(figure), flush=True)
        if args.no_peer:
            return
        peers = {}
        for scenario in REWARDS:
            peers[scenario] = bench_trl(folder, args.iterations, Path(tmp), scenario) | common
            print(json.dumps(peers[scenario]), flush=True)
        for (skip, scenario), figure in ours.items():
            name = "rl_iteration_speedup_vs_trl" + ("" if skip else "_all_rows") + scenario
            peer = peers[scenario]
            print(json.dumps({"figure": name, "ratio": peer["seconds_per_iteration"]
                              / figure["seconds_per_iteration"],
                              "ratio_mean": peer["seconds_per_iteration_mean"]
                              / figure["seconds_per_iteration_mean"], **common}), flush=True)

if __name__ == "__main__":
    main()
