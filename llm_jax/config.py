"""Experiment files and config overrides.

An experiment file defines `get_config(arg=None)` and optionally `sweep(add, arg=None)`, or
`pipeline(arg=None)`; it is addressed as `path/to/exp.py[:ARG]` and runs as trusted code.
Overrides `--config.a.b=VALUE` are Python literals type-checked against the default."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

import ml_collections

from llm_jax.errors import ConfigError

__all__ = ["ConfigError", "choose", "get_experiment_config", "load_experiment"]


def load_experiment(spec: str) -> tuple[ModuleType, str | None]:
    """Import `path.py[:ARG]`; returns (module, arg)."""
    path_str, _, arg = spec.partition(":")
    path = Path(path_str)
    if not path.is_file():
        parent = path.parent
        candidates = sorted(p.name for p in parent.glob("*.py")) if parent.is_dir() else []
        near = difflib.get_close_matches(path.name, candidates, n=1)
        hint = f"; did you mean {path.parent / near[0]}?" if near else ""
        raise ConfigError(f"experiment file not found: {path}{hint}")
    # Experiment files import presets from the project's top-level `configs/` package.
    root = str(path.resolve().parent.parent)
    if (Path(root) / "configs").is_dir() and root not in sys.path:
        sys.path.insert(0, root)
    module_name = f"llm_jax_experiment_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config") and not hasattr(module, "pipeline"):
        raise ConfigError(f"{path} defines no get_config(arg=None) (nor pipeline(arg=None))")
    return module, (arg or None)


def choose(arg: str | None, choices: dict, what: str = "experiment argument"):
    """Look up an experiment argument, with a clear error naming the valid ones."""
    key = arg or next(iter(choices))
    if key not in choices:
        near = difflib.get_close_matches(key, list(choices), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"unknown {what} {key!r}{hint}; valid: {', '.join(choices)}")
    return choices[key]


def get_experiment_config(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """Load an experiment, apply overrides, and return the locked config."""
    module, arg = load_experiment(spec)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{spec} declares a pipeline of stages, not one config: run it with "
                          f"llm-jax run {spec}")
    try:
        config = module.get_config(arg)
    except ConfigError:
        raise
    except (KeyError, ValueError) as e:
        raise ConfigError(f"{spec}: {e}") from None
    config.lock()
    apply_overrides(config, overrides)
    return config


def flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in config.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, ml_collections.ConfigDict):
            keys.extend(flat_keys(v, full + "."))
    return keys


def _parse_value(text: str, current):
    """Turn an override string into a value of the same type as `current`."""
    if isinstance(current, bool):
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"expects a bool (true/false), got {text!r}")
    if isinstance(current, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    if isinstance(current, tuple | list):
        if isinstance(value, str):  # a single path or name is a one-element list
            value = (value,) if text.strip() else ()
        if not isinstance(value, tuple | list):
            raise ValueError(f"expects a list, got {text!r}")
        return type(current)(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if current is not None and not isinstance(value, type(current)):
        raise ValueError(f"expects {type(current).__name__}, got {text!r}")
    return value


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
    """Apply `key.path=value` (or `--config.key.path=value`) strings in place."""
    valid = flat_keys(config)
    for item in overrides:
        text = item.removeprefix("--").removeprefix("config.")
        key, sep, raw = text.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like --config.KEY=VALUE")
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"unknown config key {key!r}{hint}")
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            node = node[p]
        if isinstance(node[leaf], ml_collections.ConfigDict):
            raise ConfigError(f"config key {key!r} is a group; set one of its fields")
        try:
            value = _parse_value(raw, node[leaf])
            node[leaf] = value
        except (ValueError, TypeError) as e:
            raise ConfigError(f"config key {key!r} {e}") from None


def to_dict(config: ml_collections.ConfigDict) -> dict:
    """A plain, JSON-able nested dict of the config."""
    return json.loads(config.to_json())


def save_config(config: ml_collections.ConfigDict, path: Path) -> None:
    path.write_text(json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Human-readable `key: old -> new` lines between two config dicts."""
    diffs = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs.extend(config_differences(a, b, f"{prefix}{k}."))
        elif a != b:
            diffs.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return diffs
