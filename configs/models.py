"""Model-size presets as ConfigDicts (the fields of `llm_jax.models.config.ModelConfig`)."""

import dataclasses

import ml_collections
from ml_collections import config_dict

from llm_jax.models.config import ModelConfig
from llm_jax.models.presets import preset

_OPTIONAL_INTS = ("n_kv_heads", "head_dim", "d_ff")


def model(name: str, vocab_size: int, **overrides) -> ml_collections.ConfigDict:
    """Every `ModelConfig` field, from the named preset plus overrides.

    Optional sizes stay typed placeholders so `--config.model.d_ff=1024` type-checks.
    """
    fields = {f.name: f.default for f in dataclasses.fields(ModelConfig)
              if f.default is not dataclasses.MISSING}
    fields.update(preset(name), vocab_size=vocab_size, **overrides)
    for key in _OPTIONAL_INTS:
        if fields.get(key) is None:
            fields[key] = config_dict.placeholder(int)
    return ml_collections.ConfigDict(fields)
