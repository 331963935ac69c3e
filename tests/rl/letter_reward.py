"""A reward any completion earns a little of (its share of letters that are 'e'), so tests of
the RL loop from a barely trained model get groups with different rewards."""

import numpy as np


def e_share(prompts, completions, meta):
    return np.array([c.count("e") / max(len(c), 1) for c in completions], np.float32)


def e_share_even_prompts(prompts, completions, meta):
    """`e_share` for prompts of even length, 0 for the rest: about half the groups get
    all-equal rewards, the case dynamic sampling refills."""
    return np.array([c.count("e") / max(len(c), 1) if len(p) % 2 == 0 else 0.0
                     for p, c in zip(prompts, completions)], np.float32)
