"""Loading a Hugging Face folder straight onto a mesh: every device reads only its own block of
each tensor, and the params equal an unsharded load."""

import jax
import numpy as np
import pytest
from flax import linen as nn

from llm_jax.models import hf_io
from llm_jax.models.hf_io import HFFormatError, load_hf_checkpoint, save_hf_checkpoint
from llm_jax.models.transformer import Transformer
from llm_jax.sharding.mesh import logical_shardings, make_mesh
from llm_jax.sharding.rules import rules
from tests.helpers import random_params, tiny_config


def _target_shardings(cfg, mesh, rule_name):
    abstract = jax.eval_shape(lambda: Transformer(cfg).init(
        jax.random.PRNGKey(0), jax.numpy.zeros((1, 1), jax.numpy.int32))["params"])
    return logical_shardings(abstract, mesh, rules(rule_name))


def _spec_axes(sharding) -> set:
    axes = set()
    for entry in sharding.spec:
        axes.update(entry if isinstance(entry, tuple) else (entry,))
    return axes - {None}


@pytest.mark.parametrize("flavour, overrides, mesh_shape, rule_name", [
    ("llama", {"qk_norm": True, "head_dim": 32}, {"fsdp": -1}, "fsdp"),
    ("gpt2", {"tie_embeddings": False}, {"fsdp": -1}, "fsdp"),  # fused q/k/v in one tensor
    ("llama", {"qkv_bias": True}, {"fsdp": 4, "tensor": 2}, "fsdp_tp"),  # two axes, one kernel
    ("gpt2", {}, {"fsdp": 4, "tensor": 2}, "fsdp_tp"),
], ids=["llama-fsdp", "gpt2-fsdp", "llama-fsdp_tp", "gpt2-fsdp_tp"])
def test_sharded_load_reads_blocks_and_equals_unsharded(flavour, overrides, mesh_shape,
                                                        rule_name, tmp_path, monkeypatch):
    cfg = tiny_config(flavour, **overrides)
    _, params = random_params(cfg, seed=3)
    save_hf_checkpoint(cfg, jax.device_get(params), tmp_path)
    mesh = make_mesh(mesh_shape)
    shardings = _target_shardings(cfg, mesh, rule_name)

    blocks = {}  # leaf (its HF tensor and offset in it) -> (leaf shape, shapes of its reads)
    read_leaf = hf_io.read_leaf

    def recording_read(tensor, layout, shape, offset=0, index=None):
        block = read_leaf(tensor, layout, shape, offset, index)
        blocks.setdefault((id(tensor), offset), (tuple(shape), set()))[1].add(block.shape)
        return block

    monkeypatch.setattr(hf_io, "read_leaf", recording_read)
    _, sharded = load_hf_checkpoint(tmp_path, shardings=shardings)
    monkeypatch.undo()
    _, whole = load_hf_checkpoint(tmp_path)

    flat_sharded = jax.tree_util.tree_flatten_with_path(sharded)[0]
    flat_targets = jax.tree.leaves(shardings)
    assert len(flat_sharded) == len(flat_targets)
    split_leaves = 0
    for (path, leaf), target in zip(flat_sharded, flat_targets):
        name = jax.tree_util.keystr(path)
        assert leaf.sharding.is_equivalent_to(target, leaf.ndim), name
        n_way = int(np.prod([mesh.shape[a] for a in _spec_axes(target)]))
        for shard in leaf.addressable_shards:
            assert shard.data.nbytes * n_way == leaf.nbytes, name  # 1/n of the leaf each
        split_leaves += n_way > 1
    assert split_leaves > len(flat_sharded) // 2  # most params really are split
    # Every leaf was read in blocks of one shape, and each split leaf only ever in blocks
    # smaller than itself: no device read a whole split tensor.
    assert len(blocks) == len(flat_sharded)
    assert all(len(reads) == 1 for _, reads in blocks.values())
    assert sum(reads != {shape} for shape, reads in blocks.values()) == split_leaves
    embedding = sharded["embed"]["embedding"]
    assert {s.data.shape for s in embedding.addressable_shards} == {
        (cfg.vocab_size // mesh.shape["tensor"], cfg.d_model // mesh.shape["fsdp"])}
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), sharded, whole)


def test_shardings_must_match_the_params(tmp_path):
    cfg = tiny_config("llama")
    _, params = random_params(cfg)
    save_hf_checkpoint(cfg, jax.device_get(params), tmp_path)
    shardings = _target_shardings(cfg, make_mesh({"fsdp": -1}), "fsdp")
    del shardings["final_norm"]
    with pytest.raises(HFFormatError, match="shardings do not match the params tree"):
        load_hf_checkpoint(tmp_path, shardings=nn.meta.unbox(shardings))


def test_sharded_load_of_a_bf16_checkpoint(tmp_path):
    """bf16 tensors are read block by block from the memory map and widened to fp32."""
    import ml_dtypes
    from safetensors.numpy import load_file, save_file

    cfg = tiny_config("llama", qkv_bias=True)
    _, params = random_params(cfg, seed=4)
    save_hf_checkpoint(cfg, jax.device_get(params), tmp_path)
    fp32 = load_file(tmp_path / "model.safetensors")
    save_file({k: v.astype(ml_dtypes.bfloat16) for k, v in fp32.items()},
              str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    shardings = _target_shardings(cfg, make_mesh({"fsdp": -1}), "fsdp")
    _, sharded = load_hf_checkpoint(tmp_path, shardings=shardings)
    _, whole = load_hf_checkpoint(tmp_path)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), sharded, whole)
    kernel = np.asarray(sharded["block_0"]["mlp"]["up"]["kernel"])
    assert kernel.dtype == np.float32
    want = np.asarray(params["block_0"]["mlp"]["up"]["kernel"]).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(kernel, want.astype(np.float32))
