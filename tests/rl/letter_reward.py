"""A reward any completion earns a little of (its share of letters that are 'e'), so tests of
the RL loop from a barely trained model get groups with different rewards."""

import numpy as np


def e_share(prompts, completions, meta):
    return np.array([c.count("e") / max(len(c), 1) for c in completions], np.float32)
