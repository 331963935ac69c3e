"""Every logical-axis → mesh-axis rule in the project, as data.

Parameters carry logical names (`embed`, `mlp`, `heads`, ...) and activations carry `act_*`
names; an experiment picks one rule set by name (`mesh.rules`). No other file names mesh axes.
The mesh always has the axes ("data", "fsdp", "tensor"); unused axes have size 1.
"""

from __future__ import annotations

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")  # the global batch is split over both data-parallel axes

_ACTIVATIONS_DP = (
    ("act_batch", BATCH_AXES),
    ("act_seq", None),
    ("act_embed", None),
    ("act_heads", None),
    ("act_mlp", None),
    ("act_vocab", None),
)

RULE_SETS: dict[str, tuple[tuple[str, str | tuple[str, ...] | None], ...]] = {
    # Pure data parallelism: params replicated, batch split.
    "dp": _ACTIVATIONS_DP + (
        ("vocab", None), ("embed", None), ("mlp", None), ("heads", None), ("kv_heads", None),
        ("head_dim", None), ("norm", None), ("max_len", None),
    ),
    # ZeRO-3 style: every large param split along its model dimension over `fsdp`.
    "fsdp": _ACTIVATIONS_DP + (
        ("vocab", None), ("embed", "fsdp"), ("mlp", None), ("heads", None), ("kv_heads", None),
        ("head_dim", None), ("norm", None), ("max_len", None),
    ),
    # FSDP plus Megatron tensor parallelism over `tensor` (heads, MLP hidden and vocab split).
    "fsdp_tp": (
        ("act_batch", BATCH_AXES),
        ("act_seq", None),
        ("act_embed", None),
        ("act_heads", "tensor"),
        ("act_mlp", "tensor"),
        ("act_vocab", "tensor"),
        ("vocab", "tensor"), ("embed", "fsdp"), ("mlp", "tensor"), ("heads", "tensor"),
        ("kv_heads", "tensor"), ("head_dim", None), ("norm", None), ("max_len", None),
    ),
}


def rules(name: str):
    """The rule set called `name`; unknown names list the choices."""
    if name not in RULE_SETS:
        raise KeyError(f"unknown sharding rule set {name!r}; choose from {sorted(RULE_SETS)}")
    return RULE_SETS[name]
