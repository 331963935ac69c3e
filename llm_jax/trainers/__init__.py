"""Training stages. Each is a short `main(config, run_dir) -> final metrics`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def _pretrain(config, run_dir: Path):
    from llm_jax.trainers import pretrain

    return pretrain.main(config, run_dir)


def _sft(config, run_dir: Path):
    from llm_jax.trainers import sft

    return sft.main(config, run_dir)


def _rl(config, run_dir: Path):
    from llm_jax.trainers import rl

    return rl.main(config, run_dir)


def _reward_model(config, run_dir: Path):
    from llm_jax.trainers import reward_model

    return reward_model.main(config, run_dir)


def _dpo(config, run_dir: Path):
    from llm_jax.trainers import dpo

    return dpo.main(config, run_dir)


def _probe(config, run_dir: Path):
    from llm_jax.trainers import probe

    return probe.main(config, run_dir)


# Stage name (config.stage) -> trainer. Imported lazily so `llm-jax --help` stays fast.
TRAINERS: dict[str, Callable] = {"pretrain": _pretrain, "sft": _sft, "rl": _rl,
                                 "reward_model": _reward_model, "dpo": _dpo, "probe": _probe}
