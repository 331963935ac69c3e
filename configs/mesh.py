"""Mesh presets: axis sizes for ("data", "fsdp", "tensor") and the sharding rule set to use.

-1 means "every remaining device". Rule sets live in `llm_jax/sharding/rules.py`.
"""

import ml_collections

MESHES = {
    "dp": dict(data=-1, fsdp=1, tensor=1, rules="dp"),
    "fsdp": dict(data=1, fsdp=-1, tensor=1, rules="fsdp"),
    "fsdp_tp": dict(data=1, fsdp=-1, tensor=2, rules="fsdp_tp"),
}


def mesh(name: str = "dp", **overrides) -> ml_collections.ConfigDict:
    if name not in MESHES:
        raise KeyError(f"unknown mesh preset {name!r}; choose from {sorted(MESHES)}")
    return ml_collections.ConfigDict(MESHES[name] | overrides)
