"""`config.evals`: evaluators built by name, their metrics merged, one ConfigError per mistake."""

import math

import ml_collections
import pytest

from configs import evals
from llm_jax.errors import ConfigError
from llm_jax.eval.heldout import make_lm_evaluator
from llm_jax.eval.registry import EVALUATORS, build_evaluators
from tests.helpers import CharTokenizer, random_packed_batch, random_params, tiny_config


def _config(evaluators: ml_collections.ConfigDict, stage: str = "pretrain"):
    return ml_collections.ConfigDict({"stage": stage, "evals": evaluators})


@pytest.fixture(scope="module")
def lm_parts():
    cfg = tiny_config(vocab_size=CharTokenizer.vocab_size)
    model, params = random_params(cfg)
    batches = [random_packed_batch(2, 16, cfg.vocab_size, seed=s) for s in (0, 1)]
    apply = lambda p, t, pos, seg: model.apply({"params": p}, t, pos, seg)  # noqa: E731
    parts = dict(apply=apply, lm_batches=batches, put_batch=lambda b: b,
                 tokenizer=CharTokenizer())
    return parts, params


def test_lm_loss_by_name_is_the_held_out_evaluator(lm_parts):
    parts, params = lm_parts
    by_name = build_evaluators(_config(evals.pretrain()), **parts)(params)
    direct = make_lm_evaluator(parts["apply"], parts["lm_batches"], parts["put_batch"],
                               CharTokenizer().token_byte_lengths())(params)
    assert set(by_name) == {"eval_loss", "eval_ppl", "eval_bpb"}
    assert by_name == direct
    # random weights over 260 tokens: the loss is near log(260), far from 0
    assert abs(by_name["eval_loss"] - math.log(260)) < 1.0


def test_every_preset_names_registered_evaluators_and_settings():
    for preset in (evals.pretrain(), evals.sft(), evals.reward_model(), evals.dpo(),
                   evals.rl(), evals.rlhf()):
        for name, settings in preset.items():
            assert name in EVALUATORS
            assert set(settings) <= set(EVALUATORS[name].settings), name


@pytest.mark.parametrize("evaluators, message", [
    ({"lm_los": {}}, "evals.lm_los: no such evaluator"),
    ({"chat": {"max_tokens": 8}}, "evals.chat.max_tokens: no such setting"),
    ({"pairs": {}}, "evals.pairs: the pretrain stage has no pair_objective"),
])
def test_a_bad_name_setting_or_part_is_one_config_error(lm_parts, evaluators, message):
    parts, _ = lm_parts
    with pytest.raises(ConfigError, match=message) as error:
        build_evaluators(_config(ml_collections.ConfigDict(evaluators)), **parts)
    assert "\n" not in str(error.value)


def test_a_config_without_evals_is_a_config_error(lm_parts):
    parts, _ = lm_parts
    with pytest.raises(ConfigError, match="config.evals is not set"):
        build_evaluators(ml_collections.ConfigDict({"stage": "pretrain"}), **parts)

