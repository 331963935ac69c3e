"""SFT conversations through the packing pipeline: each packed row's loss_mask is exactly
the per-conversation shifted masks, segments and positions restart per conversation."""

import numpy as np
import pytest

from llm_jax.data.chat import render_for_training, sft_example
from llm_jax.data.pipeline import packed_batches
from llm_jax.data.tokenizer import Tokenizer

FIELDS = ("inputs", "targets", "loss_mask")


@pytest.fixture(scope="module")
def tok(tmp_path_factory, austen_text):
    return Tokenizer.train([austen_text[:200_000]], 512, tmp_path_factory.mktemp("tok") / "t.model")


def _conversations(n):
    return [[{"role": "user", "content": f"Question number {i}?"},
             {"role": "assistant", "content": "Answer " + "yes " * (i % 4 + 1)},
             {"role": "user", "content": "Sure?"},
             {"role": "assistant", "content": f"Quite sure, {i}."}] for i in range(n)]


def test_packed_loss_mask_is_the_shifted_conversation_masks(tok):
    conversations = _conversations(12)
    expected = {}
    for c in conversations:
        ids, mask = render_for_training(c, tok)
        expected[tuple(ids[:-1])] = (ids[1:], mask[1:])
    it = packed_batches(conversations, lambda c: sft_example(c, tok), seq_len=96, batch_size=2,
                        seed=0, fields=FIELDS, split=False)
    seen = 0
    for _ in range(4):
        batch = next(it)
        for row in range(2):
            seg, pos = batch["segment_ids"][row], batch["positions"][row]
            for s in range(1, seg.max() + 1):
                where = seg == s
                inputs = tuple(batch["inputs"][row][where].tolist())
                targets, mask = expected[inputs]  # a whole conversation, never cut
                np.testing.assert_array_equal(batch["targets"][row][where], targets)
                np.testing.assert_array_equal(batch["loss_mask"][row][where], mask)
                np.testing.assert_array_equal(pos[where], np.arange(where.sum()))
                seen += 1
            # Padding is never trained on.
            assert (batch["loss_mask"][row][seg == 0] == 0).all()
    assert seen >= 8
