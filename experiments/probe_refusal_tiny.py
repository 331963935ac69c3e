"""Teach the tiny chat model where its knowledge ends: probe it, train refusals, probe again.

    llm-jax run experiments/probe_refusal_tiny.py            # "I don't know" where it is wrong
    llm-jax run experiments/probe_refusal_tiny.py:search     # a search call where it is wrong
    llm-jax run experiments/probe_refusal_tiny.py --stage.before.init.from_run=RUN \\
        --stage.sft.init.from_run=RUN                        # another chat model

Llama 3's factuality recipe at toy scale, from the speedrun's SFT model
(runs/speedrun_tiny/default/02-sft). Three stages, under runs/probe_refusal_tiny/<arg>/:
1. `before` (a probe stage, `llm_jax/trainers/probe.py`): factual questions made by templates
   from the model's own training text (who says a quoted line, which book a character is
   in, the first words of a verse) and generated arithmetic like that mixed into its
   pretraining text, K = 8 answers sampled each, scored against the reference.
   Train-split questions it gets right ≥ 75% of the time keep a right answer; those it gets
   right ≤ 25% of the time are answered "I don't know." (`:search`: the corpus is indexed
   into before/index and they are answered with a search call, `search:` alone, which the
   engine answers with the passage the question itself finds, then the answer when that
   passage holds it, else "I don't know."; 600 more train-split questions, not probed, are
   written the same way (search practice); K = 4).
2. `sft`: the chat model fine-tuned on those conversations (`sft_tiny.py`): 150 steps
   among 1,000 replayed conversations of its own SFT mixture (`sft.replay`); `:search`, 600
   steps on the probe's and the practice conversations.
3. `after`: the same probe, scored against the `before` labels on the held-out questions;
   it writes after/probe.png (before/after: accuracy, refusals on unknowns, false refusals
   on knowns; with `:search` the after model answers with the search tool).
"""

from configs import base
from configs import probe as probe_preset
from llm_jax.config import choose
from llm_jax.pipeline import Stage, StageDir

CHAT_MODEL = "runs/speedrun_tiny/default/02-sft"
COMMON = {"wandb.project": "llm-jax-probe"}


def probe_config(**probe_overrides):
    """A probe stage of `CHAT_MODEL` (its `init.from_run`): 100 questions of each kind from
    the text and 200 arithmetic ones (the kind the model partly knows)."""
    config = base.base_config()
    config.stage = "probe"
    config.init.from_run = CHAT_MODEL
    config.probe = probe_preset.probe(**{"arithmetic": 200, **probe_overrides})
    config.wandb.project = COMMON["wandb.project"]
    return config


def pipeline(arg=None):
    search = choose(arg, {"default": False, "search": True}, "probe_refusal_tiny variant")
    index = {"tools.search.index": StageDir("before", "index")} if search else {}
    # With search a reply holds the call, ~60 forced tokens of passage and the answer: more
    # room, fewer samples (the same settings before and after).
    probe = dict(samples=4, max_new_tokens=112) if search else {}
    tools = {"tools.search.max_chars": 200} if search else {}
    # Without search: the refusals among 1,000 conversations of the chain's own SFT mixture
    # (replay; mostly worked arithmetic, the kind of question the model knows), so it learns
    # to refuse the text questions without unlearning to answer sums.
    # With search: 600 more train-split questions answered by a search (search practice),
    # and the call is `search:` alone (the engine searches with the question: this model
    # cannot copy a ten-word query), so what is left to learn is when to search and copying
    # the answer out of the passage; 600 steps (~13 epochs: held-out text questions right
    # 13.7% at 200 steps, 21.6% at 280, 27.7% at 600, 28.4% at 1,000).
    data = ({"train.steps": 600, "train.checkpoint_every": 600} if search
            else {"sft.replay": 1000})
    before = dict(build_index=True, search_practice=600, search_query="question") if search \
        else {}
    return [
        Stage("before", probe_config(**before, **probe), tools, parent=None),
        Stage("sft", "sft_tiny.py", COMMON | index | tools | {
            "init.from_run": CHAT_MODEL,
            "data.train_paths": StageDir("before", "refusal_sft.jsonl"),
            "train.steps": 150, "optim.lr": 5e-4, "optim.warmup_steps": 10,
            "train.eval_every": 0, "train.eval_at_start": False,
            "train.checkpoint_every": 150, "sft.eval_math": 20,
            # a conversation too long for a row (a long passage) is skipped, and counted
            "data.skip_bad": True} | data, parent=None),
        Stage("after", probe_config(**probe), index | tools | {
            "probe.baseline": StageDir("before", "probe.jsonl")}, parent="sft"),
    ]
