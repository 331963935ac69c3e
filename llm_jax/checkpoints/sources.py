"""Models from where they live: a run directory or a Hugging Face folder, sharded onto a mesh.

    source = ModelSource.parse(from_run="runs/pretrain_tiny/default")      # or from_hf=...
    params = source.load_params(source.model_config(), param_shardings)

Restores never gather the model on one device."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp

from llm_jax.checkpoints.restore import abstract_tree, restore_params
from llm_jax.data.hf_tokenizer import HF_TOKENIZER_FILE, HFTokenizer
from llm_jax.data.hf_tokenizer_export import HF_TOKENIZER_FILES
from llm_jax.data.tokenizer import Tokenizer
from llm_jax.errors import DataError, ModelFileError, RunError
from llm_jax.models.config import ModelConfig
from llm_jax.models.lora import lora_config, merge, model_adapter_init
from llm_jax.models.transformer import Transformer
from llm_jax.runs import TOKENIZER_FILE, RunDir

# A run started from a Hub folder keeps that folder's tokenizer files here.
HF_TOKENIZER_DIR = "hf_tokenizer"
_HF_TOKENIZER_FILES = (*HF_TOKENIZER_FILES, "generation_config.json", "config.json")
# Fields a child stage may change on its parent's architecture: how it computes, not what.
COMPUTE_FIELDS = ("dtype", "remat")
# config.json key naming the params subtree that is the language model, in runs whose
# checkpoints hold more than one model (PPO's policy beside its critic).
POLICY_PARAMS = "policy_params"


def abstract_params(cfg: ModelConfig, shardings=None):
    """ShapeDtypeStructs of the model's params (with `shardings` when given), nothing run."""
    model = Transformer(cfg)
    return abstract_tree(lambda rng: model.init(rng, jnp.zeros((1, 1), jnp.int32))["params"],
                         shardings)


def _hf_config(folder: str | Path) -> ModelConfig:
    from llm_jax.models.hf_io import config_from_hf

    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ModelFileError(f"{folder}: not a Hugging Face model folder (no config.json)")
    try:
        return config_from_hf(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def load_tokenizer(folder: str | Path) -> Tokenizer | HFTokenizer:
    """A run's (or exported folder's) tokenizer: our sentencepiece model, else the Hub
    tokenizer files a run started from a Hub folder carries, else the folder's own."""
    folder = Path(folder)
    run = RunDir(folder)
    if run.tokenizer.is_file():
        return Tokenizer.load(run.tokenizer)
    for candidate in (folder / HF_TOKENIZER_DIR, folder):
        if (candidate / HF_TOKENIZER_FILE).is_file():
            return HFTokenizer(candidate)
    raise DataError(f"{folder}: no tokenizer ({run.tokenizer.name} or {HF_TOKENIZER_FILE})")


def chat_template_for(folder: str | Path, system: str | None = None):
    """The chat template a model speaks: a Hub model's own (its folder, or the Hub tokenizer
    files a run started from one carries), else ours (with an optional system message)."""
    from llm_jax.data.chat import OurTemplate
    from llm_jax.data.chat_jinja import JinjaTemplate

    folder = Path(folder)
    for candidate in (folder / HF_TOKENIZER_DIR, folder):
        config = candidate / "tokenizer_config.json"
        if config.is_file() and "chat_template" in config.read_text(encoding="utf-8"):
            return JinjaTemplate.from_folder(candidate)
    return OurTemplate(system=system)


def run_chat_template(run_dir: str | Path):
    """The template a run's model speaks: a chat model's (with the identity system message
    when its SFT stage used one), or None for a base model (a pretraining run)."""
    config = RunDir(run_dir).read_config()
    if config.get("stage", "pretrain") == "pretrain":
        return None
    sft = config.get("sft", {})
    system = None
    if sft.get("system"):
        from llm_jax.data.chat import identity_system_message

        system = identity_system_message(sft["identity_name"], sft["identity_maker"])
    return chat_template_for(run_dir, system)


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where a stage's initial params come from; "random" means a fresh init."""

    kind: Literal["random", "run", "hf"] = "random"
    path: str = ""
    step: int | None = None  # run checkpoints only; None = the newest

    @classmethod
    def parse(cls, from_run: str = "", from_hf: str = "", step: int = -1) -> ModelSource:
        if from_run and from_hf:
            raise RunError("init.from_run and init.from_hf are both set; give one")
        if from_run:
            run = RunDir(from_run)
            if not run.exists():
                raise RunError(f"init.from_run={from_run}: not a run directory (no "
                               f"{run.config.name})")
            steps = run.checkpoint_steps()
            if not steps:
                raise RunError(f"init.from_run={from_run}: the run has no checkpoint yet")
            if step >= 0 and step not in steps:
                raise RunError(f"init.from_step={step}: {from_run} has checkpoints at "
                               f"{steps}")
            return cls("run", str(from_run), step if step >= 0 else steps[-1])
        if from_hf:
            return cls("hf", str(from_hf))
        return cls()

    def describe(self) -> dict:
        """What config.json and W&B record as the run's parent."""
        if self.kind == "random":
            return {"kind": "random"}
        out = {"kind": self.kind, "path": str(Path(self.path).absolute())}
        if self.step is not None:
            out["step"] = self.step
        return out

    def model_config(self, overrides: dict | None = None) -> ModelConfig:
        """The parent's architecture, with the compute fields of `overrides` applied."""
        if self.kind == "run":
            fields = RunDir(self.path).read_config()["model"]
        elif self.kind == "hf":
            fields = dataclasses.asdict(_hf_config(self.path))
        else:
            raise ValueError("a random init has no parent architecture")
        for key in COMPUTE_FIELDS:
            if overrides and key in overrides:
                fields[key] = overrides[key]
        return ModelConfig(**fields)

    def load_params(self, cfg: ModelConfig, shardings=None):
        """The parent's params placed with `shardings` (default: the first device)."""
        target = abstract_params(cfg, shardings)
        if self.kind == "run":
            # A run whose params nest the language model (PPO: {"policy", "critic"}) records
            # the key; only that subtree is read.
            key = RunDir(self.path).read_config().get(POLICY_PARAMS)
            params, _ = restore_params(RunDir(self.path).checkpoints,
                                       {key: target} if key else target, self.step)
            return params[key] if key else params
        if self.kind == "hf":
            from llm_jax.models.hf_io import load_hf_checkpoint

            # Each device reads only its own block of each tensor from the mapped files.
            _, params = load_hf_checkpoint(self.path, dtype=cfg.dtype,
                                           shardings=jax.tree.map(lambda s: s.sharding, target))
            return params
        raise ValueError("a random init has no params to load")

    def tokenizer(self) -> Tokenizer | HFTokenizer:
        return load_tokenizer(self.path)

    def copy_tokenizer(self, run_dir: RunDir) -> None:
        """Give a child run its parent's tokenizer files, so the run directory stands alone."""
        src = Path(self.path)
        if self.kind == "run" and RunDir(src).tokenizer.is_file():
            files, dest = [RunDir(src).tokenizer], run_dir.path
        else:
            folder = src / HF_TOKENIZER_DIR if (src / HF_TOKENIZER_DIR).is_dir() else src
            files = [folder / n for n in _HF_TOKENIZER_FILES if (folder / n).is_file()]
            dest = run_dir.path / HF_TOKENIZER_DIR
            if not (folder / HF_TOKENIZER_FILE).is_file() and (src / TOKENIZER_FILE).is_file():
                files, dest = [src / TOKENIZER_FILE], run_dir.path
        dest.mkdir(parents=True, exist_ok=True)
        for f in files:
            target = dest / f.name
            if not target.exists():
                target.write_bytes(f.read_bytes())


def load_model(run_dir: str | Path | None = None, hf: str | Path | None = None, *,
               step: int | None = None, tokenizer_path: str | Path | None = None,
               shardings=None) -> tuple[Transformer, dict, Tokenizer | HFTokenizer, int | None]:
    """(model, params, tokenizer, step) from a run directory or a Hugging Face folder."""
    if hf:
        source = ModelSource("hf", str(hf))
    else:
        if run_dir is None:
            raise RunError("give a run directory or a Hugging Face folder")
        run = RunDir(run_dir)
        steps = run.checkpoint_steps() if run.exists() else None
        if steps is None:
            raise RunError(f"{run_dir}: not a run directory (no {run.config.name})")
        if not steps:
            raise RunError(f"{run_dir}: the run has no checkpoint yet")
        source = ModelSource("run", str(run_dir), steps[-1] if step is None else step)
        if is_lora_run(run_dir):  # the parent's params with the run's adapters merged in
            model, params, step = lora_run_params(run_dir, source.step)
            tokenizer = (Tokenizer.load(tokenizer_path) if tokenizer_path
                         else load_tokenizer(run_dir))
            return model, params, tokenizer, step
    cfg = source.model_config()
    params = source.load_params(cfg, shardings)
    tokenizer = Tokenizer.load(tokenizer_path) if tokenizer_path else source.tokenizer()
    if tokenizer.vocab_size > cfg.vocab_size:
        raise DataError(f"{source.path}: the tokenizer has {tokenizer.vocab_size} tokens but "
                        f"the model only {cfg.vocab_size}")
    return Transformer(cfg), params, tokenizer, source.step


def parent_of(run_dir: str | Path) -> dict | None:
    """The parent recorded in a run's config.json (None for a run from scratch)."""
    parent = RunDir(run_dir).read_config().get("parent")
    return parent if parent and parent.get("kind") != "random" else None


def model_fields(cfg: ModelConfig) -> dict:
    """The JSON-able fields config.json stores under "model"."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# ---------------------------------------------------------------- LoRA runs

def is_lora_run(run_dir: str | Path) -> bool:
    """Whether `run_dir` is a run directory whose params are LoRA adapters."""
    run = RunDir(run_dir)
    return run.exists() and lora_config(run.read_config()).rank > 0


def lora_run_params(run_dir: str | Path, step: int | None = None):
    """(model, merged params, step) of a LoRA run: its parent's params (as `config.json`
    records them) with the run's newest (or `step`) adapters merged in, on one device."""
    run = RunDir(run_dir)
    saved = run.read_config()
    cfg = lora_config(saved)
    model_cfg = ModelConfig(**saved["model"])
    model = Transformer(model_cfg)
    target = abstract_tree(model_adapter_init(model, cfg))
    adapters, step = restore_params(run.checkpoints, target, step)
    parent = base_source(saved, run_dir)
    base = parent.load_params(model_cfg)
    return model, jax.jit(lambda b, a: merge(b, a, cfg))(base, adapters), step


def base_source(saved: Mapping, run_dir: str | Path) -> ModelSource:
    """The `ModelSource` of a LoRA run's frozen base: the parent its `config.json` records."""
    parent = dict(saved.get("parent") or {})
    if parent.get("kind") not in ("run", "hf"):
        raise RunError(f"{run_dir}: a LoRA run needs its parent model, but config.json "
                       f"records none ({parent or 'no parent'})")
    if not Path(parent["path"]).exists():
        raise RunError(f"{run_dir}: the base model of this LoRA run, {parent['path']}, is gone; "
                       "the run's checkpoints hold only the adapters")
    return ModelSource(parent["kind"], parent["path"], parent.get("step"))
