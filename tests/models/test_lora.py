"""LoRA adapters: an adapted model starts equal to its base, the training forward equals the
merged weights, one step moves only the adapters, and the adapters follow the sharding rules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn
from jax.sharding import PartitionSpec as P

from llm_jax.losses.lm import make_lm_loss
from llm_jax.models.config import ModelConfig
from llm_jax.models.lora import LoraConfig, adapted, merge, model_adapter_init
from llm_jax.models.transformer import Transformer
from llm_jax.sharding.mesh import make_mesh, mesh_context
from llm_jax.sharding.rules import rules
from llm_jax.train.init import init_train_state, state_shardings
from llm_jax.train.lora import LoraTraining
from llm_jax.train.step import make_train_step

ALL = ("query", "key", "value", "out", "up", "gate", "fc_in", "fc_out")
LLAMA = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2,
                    max_seq_len=16, norm="rmsnorm", pos="rope", mlp="swiglu")
GPT2 = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, max_seq_len=16,
                   use_bias=True, remat="full")


def _setup(model_cfg, lora_cfg, seed=0):
    model = Transformer(model_cfg)
    base = nn.meta.unbox(model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 1), jnp.int32))
                         ["params"])
    adapters = nn.meta.unbox(model_adapter_init(model, lora_cfg)(jax.random.PRNGKey(seed + 1)))
    tokens = jax.random.randint(jax.random.PRNGKey(7), (2, 12), 0, model_cfg.vocab_size)
    return model, base, adapters, tokens


def _randomize_b(adapters, seed=3):
    """Non-zero B everywhere, as after some training."""
    leaves, tree = jax.tree.flatten_with_path(adapters)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    out = [0.1 * jax.random.normal(k, x.shape) if path[-1].key == "lora_b" else x
           for k, (path, x) in zip(keys, leaves, strict=True)]
    return jax.tree.unflatten(tree, out)


@pytest.mark.parametrize("model_cfg", [LLAMA, GPT2], ids=["llama", "gpt2"])
def test_at_init_logits_equal_the_base_model_exactly(model_cfg):
    cfg = LoraConfig(rank=4, alpha=8.0, targets=ALL)
    model, base, adapters, tokens = _setup(model_cfg, cfg)
    expected = model.apply({"params": base}, tokens)
    with adapted(adapters, cfg):
        training = model.apply({"params": base}, tokens)
    merged = model.apply({"params": merge(base, adapters, cfg)}, tokens)
    np.testing.assert_array_equal(training, expected)
    np.testing.assert_array_equal(merged, expected)
    # every targeted kernel got an adapter, A random and B zero
    n_kernels = sum(1 for p, _ in jax.tree.flatten_with_path(base)[0]
                    if p[-1].key == "kernel" and p[-2].key in ALL)
    a = [x for p, x in jax.tree.flatten_with_path(adapters)[0] if p[-1].key == "lora_a"]
    assert len(a) == n_kernels > 0 and all(float(jnp.abs(x).max()) > 0 for x in a)


@pytest.mark.parametrize("model_cfg", [LLAMA, GPT2], ids=["llama", "gpt2"])
def test_training_forward_equals_merged_weights(model_cfg):
    cfg = LoraConfig(rank=4, alpha=8.0, targets=ALL)
    model, base, adapters, tokens = _setup(model_cfg, cfg)
    adapters = _randomize_b(adapters)
    with adapted(adapters, cfg):
        training = model.apply({"params": base}, tokens)
    merged = model.apply({"params": merge(base, adapters, cfg)}, tokens)
    base_logits = model.apply({"params": base}, tokens)
    assert float(jnp.abs(merged - base_logits).max()) > 1e-2  # the adapters do something
    np.testing.assert_allclose(training, merged, atol=1e-5, rtol=1e-5)


def test_only_targeted_projections_are_adapted():
    cfg = LoraConfig(rank=2, targets=("value", "fc_out"))
    _, base, adapters, _ = _setup(GPT2, cfg)
    modules = {tuple(k.key for k in p[:-1]) for p, _ in jax.tree.flatten_with_path(adapters)[0]}
    assert modules == {(f"block_{i}", part, name) for i in range(2)
                       for part, name in (("attn", "value"), ("mlp", "fc_out"))}
    a = adapters["block_0"]["attn"]["value"]
    # value kernel [embed, kv_heads, head_dim] -> A [embed, r], B [r, kv_heads, head_dim]
    assert a["lora_a"].shape == (32, 2) and a["lora_b"].shape == (2, 4, 8)
    merged = merge(base, _randomize_b(adapters), cfg)
    changed = {tuple(k.key for k in p) for (p, x), y in zip(
        jax.tree.flatten_with_path(merged)[0], jax.tree.leaves(base), strict=True)
        if not np.array_equal(x, y)}
    assert changed == {(f"block_{i}", part, name, "kernel") for i in range(2)
                       for part, name in (("attn", "value"), ("mlp", "fc_out"))}


def test_dropout_acts_on_the_adapter_path_only():
    cfg = LoraConfig(rank=4, alpha=8.0, dropout=0.5, targets=ALL)
    model, base, adapters, tokens = _setup(LLAMA, cfg)
    run = lambda ad, key: model.apply({"params": base}, tokens) if ad is None else \
        _adapted_apply(model, base, ad, cfg, key, tokens)  # noqa: E731
    # B = 0: dropout cannot change anything
    np.testing.assert_array_equal(run(adapters, jax.random.PRNGKey(0)), run(None, None))
    trained = _randomize_b(adapters)
    one, again = run(trained, jax.random.PRNGKey(0)), run(trained, jax.random.PRNGKey(0))
    other = run(trained, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(one, again)  # the rng decides the masks
    assert float(jnp.abs(one - other).max()) > 1e-3
    with pytest.raises(ValueError, match="rng"):
        with adapted(trained, cfg):
            pass


def _adapted_apply(model, base, adapters, cfg, key, tokens):
    with adapted(adapters, cfg, key):
        return model.apply({"params": base}, tokens)


def test_config_errors():
    with pytest.raises(ValueError, match="unknown targets"):
        LoraConfig(rank=4, targets=("qkv",))
    with pytest.raises(ValueError, match="dropout"):
        LoraConfig(rank=4, dropout=1.0)


def _lora_training(model_cfg, lora_cfg, mesh, rule_set, optimizer):
    """(model, LoraTraining, adapter state, state shardings) on `mesh` as Run.init_state
    builds them."""
    from llm_jax.sharding.mesh import batch_sharding
    from llm_jax.train.setup import model_init_fn

    model = Transformer(model_cfg)
    _, base_sh = state_shardings(model_init_fn(model), optax.identity(), mesh, rule_set)
    base_state, _ = init_train_state(model_init_fn(model), optax.identity(),
                                     jax.random.PRNGKey(0), mesh, rule_set, base_sh)
    lora = LoraTraining(lora_cfg, base_state.params, base_sh.params, batch_sharding(mesh))
    init = model_adapter_init(model, lora_cfg)
    _, shardings = state_shardings(init, optimizer, mesh, rule_set)
    state, _ = init_train_state(init, optimizer, jax.random.PRNGKey(1), mesh, rule_set,
                                shardings)
    return model, lora, state, shardings


def test_adapters_are_sharded_by_the_rules_on_an_fsdp_mesh():
    assert jax.device_count() == 8
    mesh, rule_set = make_mesh({"fsdp": -1}), rules("fsdp")
    cfg = LoraConfig(rank=4, targets=ALL)
    with mesh_context(mesh, rule_set):
        _, lora, state, shardings = _lora_training(LLAMA, cfg, mesh, rule_set, optax.adam(1e-3))
    attn, mlp = state.params["block_0"]["attn"], state.params["block_0"]["mlp"]
    # embed -> fsdp on the side of the kernel that has it; the rank is never split
    assert attn["query"]["lora_a"].sharding.spec == P("fsdp", None)
    assert attn["query"]["lora_b"].sharding.spec == P(None, None, None)
    assert attn["out"]["lora_a"].sharding.spec == P(None, None, None)
    assert attn["out"]["lora_b"].sharding.spec == P(None, "fsdp")
    assert mlp["gate"]["lora_a"].sharding.spec == P("fsdp", None)
    assert mlp["fc_out"]["lora_b"].sharding.spec == P(None, "fsdp")
    assert len(attn["query"]["lora_a"].sharding.device_set) == 8
    # the optimizer's moments are laid out like the adapters they belong to
    mu = state.opt_state[0].mu["block_0"]["attn"]["query"]["lora_a"]
    assert mu.sharding.spec == P("fsdp", None)
    assert lora.base["block_0"]["attn"]["query"]["kernel"].sharding.spec == P("fsdp", None, None)


def test_one_step_moves_only_the_adapters():
    mesh, rule_set = make_mesh({"fsdp": -1}), rules("fsdp")
    cfg = LoraConfig(rank=4, alpha=8.0, targets=ALL)
    optimizer = optax.adam(1e-2)
    with mesh_context(mesh, rule_set):
        model, lora, state, shardings = _lora_training(LLAMA, cfg, mesh, rule_set, optimizer)
        base_before = jax.tree.map(np.asarray, lora.base)
        adapters_before = jax.tree.map(np.asarray, state.params)
        apply = lambda p, t, pos, seg: model.apply({"params": p}, t, pos, seg)  # noqa: E731
        step = lora.jit_step(make_train_step(lora.loss(make_lm_loss(apply)), optimizer),
                             shardings)
        tokens = jax.random.randint(jax.random.PRNGKey(5), (8, 13), 0, LLAMA.vocab_size)
        batch = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
                 "segment_ids": jnp.ones((8, 12), jnp.int32),
                 "positions": jnp.broadcast_to(jnp.arange(12), (8, 12))}
        new, metrics = step(state, jax.device_put(batch, lora.batch_sharding))
        assert np.isfinite(float(metrics["loss"]))
        # the frozen base is bit-identical and still usable (it was not donated)
        jax.tree.map(np.testing.assert_array_equal, base_before,
                     jax.tree.map(np.asarray, lora.base))
        # every B moved off zero (A moves only from the second step: its gradient is 0·…)
        for path, x in jax.tree.flatten_with_path(new.params)[0]:
            if path[-1].key == "lora_b":
                assert float(jnp.abs(x).max()) > 0, path
        assert any(not np.array_equal(a, b) for a, b in zip(
            jax.tree.leaves(adapters_before), jax.tree.leaves(new.params), strict=True))
        # the optimizer state covers the adapters and nothing else
        n_adapter = sum(x.size for x in jax.tree.leaves(new.params))
        moments = [x for x in jax.tree.leaves(new.opt_state) if x.ndim > 0]
        assert sum(x.size for x in moments) == 2 * n_adapter  # adam: mu and nu
        assert n_adapter < sum(x.size for x in jax.tree.leaves(lora.base)) // 4
        # evaluations see base + adapters
        merged = lora.merged(new.params)
        assert merged["block_0"]["attn"]["query"]["kernel"].sharding.spec == P("fsdp", None,
                                                                                  None)
        with adapted(new.params, cfg):
            expected = model.apply({"params": lora.base}, batch["inputs"])
        np.testing.assert_allclose(model.apply({"params": merged}, batch["inputs"]), expected,
                                   atol=1e-5, rtol=1e-5)
