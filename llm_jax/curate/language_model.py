"""py3langid's language identifier, loaded once per process (shared by forked workers).

    classify = language_identifier().classify    # (language, probability)

Its model ships LZMA-compressed in the wheel (68 MB unpacked) and takes ~0.4 s to load, so it
lives here, outside the `LangIdFilter` step that the executor pickles for every task, and
`warm.py` loads it before the local executor forks.
"""

from __future__ import annotations

import functools


@functools.cache
def language_identifier():
    """py3langid's `LanguageIdentifier`, probabilities normalised over its 97 languages."""
    import py3langid.langid as langid

    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
