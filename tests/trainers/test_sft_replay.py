"""`sft.replay`: conversations from files are mixed with the built-in mixture's."""

import json

import pytest

from configs import base, sft
from llm_jax.checkpoints.sources import load_tokenizer
from llm_jax.data.chat import OurTemplate
from llm_jax.data.records import BadRecordStats
from llm_jax.errors import ConfigError
from llm_jax.trainers.sft import builtin_mixture, load_conversations


def _config(chats, test_corpus, replay):
    config = base.base_config()
    config.data.train_paths = (str(chats),)
    config.sft = sft.sft(replay=replay, books=(str(test_corpus / "persuasion.txt"),),
                         eval_size=2, eval_math=2)
    return config


@pytest.fixture(scope="module")
def load(tiny_pretrained_run):
    """load_conversations with the tiny run's tokenizer and our template."""
    tokenizer = load_tokenizer(tiny_pretrained_run)
    return lambda config: load_conversations(config, tokenizer, OurTemplate(), BadRecordStats())


def test_replay_mixes_the_builtin_mixture_into_file_conversations(load, test_corpus, tmp_path):
    chats = tmp_path / "refusals.jsonl"
    refusal = [{"role": "user", "content": "Who wrote the letter?"},
               {"role": "assistant", "content": "I don't know."}]
    chats.write_text("".join(json.dumps({"messages": refusal}) + "\n" for _ in range(51)))

    plain, heldout, _ = load(_config(chats, test_corpus, 0))
    assert len(plain) == 50 and len(heldout) == 1 and all(c == refusal for c in plain)

    mixed, heldout, _ = load(_config(chats, test_corpus, 30))
    others = [c for c in mixed if c != refusal]
    # about 30 (the mixture rounds each kind's share)
    assert len(mixed) == 50 + len(others) and 27 <= len(others) <= 30 and heldout == [refusal]
    assert all(c[-1]["role"] == "assistant" for c in others)
    # Shuffled together (seeded), not the files' conversations followed by the replay.
    positions = [i for i, c in enumerate(mixed) if c == refusal]
    assert positions != list(range(50))
    again, _, _ = load(_config(chats, test_corpus, 30))
    assert again == mixed


@pytest.mark.parametrize("key", ["answer_first", "math_calculator", "math_answer_only"])
def test_a_style_share_outside_0_to_1_is_one_config_error(test_corpus, key):
    config = base.base_config()
    config.sft = sft.sft(books=(str(test_corpus / "persuasion.txt"),), **{key: 1.5})
    with pytest.raises(ConfigError, match=f"sft.{key}=1.5"):
        builtin_mixture(config, size=10)
