"""The SFT section of a config (read by `llm_jax/trainers/sft.py`) and its model section."""

import ml_collections

from llm_jax.recipes.sft_mixture import DEFAULT_WEIGHTS


def sft(**overrides) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        identity_name="Quill",  # who the model says it is
        identity_maker="the llm-jax project",  # and who made it
        # A default system message carrying the identity (our template only). Off by default:
        # with the name in every prompt, the identity evaluation would only test copying.
        system=False,
        layout="auto",  # conversation files: auto | messages | sharegpt | prompt_completion
        # The built-in mixture, used when data.train_paths is empty.
        mixture_size=3000,  # training conversations
        # With data.train_paths: this many conversations of the built-in mixture mixed in
        # (replay, so narrow data such as refusals does not wash out the chat skills).
        replay=0,
        weights=ml_collections.ConfigDict(dict(DEFAULT_WEIGHTS)),  # share of each kind
        math_levels=(1, 2),  # arithmetic difficulty levels in the mixture
        # column: sums worked digit by digit, carries written | plain: a line per operation
        math_working="column",
        # The share of arithmetic replies that hand each operation to the calculator instead
        # of working it out (a second way to the answer, which RL can learn to prefer)
        math_calculator=0.0,
        # The share of math replies that state the answer before the working (1: all, the
        # comparison variant; between 0 and 1, a mixture whose style RL can learn to choose)
        answer_first=0.0,
        # The share of arithmetic replies that give the answer alone (`#### N`, no working):
        # the same skill asked of one token, a style RL can learn to leave
        math_answer_only=0.0,
        books=(),  # text files for the passage tasks; empty = the default corpus
        eval_size=40,  # held-out conversations per kind
        eval_math=100,  # held-out arithmetic problems in the chat evaluation, even per level
    ) | overrides)


def compute_only_model() -> ml_collections.ConfigDict:
    """A child stage takes its architecture from its parent; only how it computes is set."""
    return ml_collections.ConfigDict(dict(dtype="float32", remat="none"))
