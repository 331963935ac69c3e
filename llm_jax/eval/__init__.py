"""Evaluations every stage can call: held-out loss and bits per byte, sampled text."""
