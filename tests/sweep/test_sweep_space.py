"""Sweep declarations: grid expansion, seeded random search, checks before anything runs."""

import math
from pathlib import Path

import pytest

from llm_jax.config import get_experiment_config
from llm_jax.errors import ConfigError
from llm_jax.runs import run_name
from llm_jax.sweep import choice, grid, loguniform, randint, uniform
from llm_jax.sweep.space import Declaration, format_value, plan_sweep
from tests.sweep.fakes import write_experiment


def test_grid_is_the_cartesian_product_first_key_slowest():
    points = grid({"optim.lr": [1e-3, 2e-3], "--config.train.steps": [10, 20, 30]})
    assert len(points) == 6
    assert points[0] == {"optim.lr": 1e-3, "train.steps": 10}
    assert points[2] == {"optim.lr": 1e-3, "train.steps": 30}
    assert points[3] == {"optim.lr": 2e-3, "train.steps": 10}
    with pytest.raises(ConfigError, match="non-empty list"):
        grid({"optim.lr": 1e-3})


def _random(seed):
    add = Declaration()
    add.random(6, {"optim.lr": loguniform(1e-4, 1e-2), "optim.warmup_steps": randint(0, 50),
                   "train.fast": choice(True, False), "train.steps": 7,
                   "optim.b": uniform(0.1, 0.2)}, seed=seed)
    return add.points()


def test_random_search_is_reproducible_and_seeded():
    first, again, other = _random(0), _random(0), _random(1)
    assert first == again
    assert first != other
    for p in first:
        assert 1e-4 <= p["optim.lr"] <= 1e-2 and 0 <= p["optim.warmup_steps"] <= 50
        assert p["train.fast"] in (True, False) and p["train.steps"] == 7
        assert 0.1 <= p["optim.b"] <= 0.2
        # 4 significant digits, so run names stay short
        assert p["optim.lr"] == float(f"{p['optim.lr']:.4g}")
    # log-uniform: spread over decades, not bunched near the top
    assert min(p["optim.lr"] for p in first + other) < 1e-3


def test_declaration_blocks_and_mixing_rules():
    add = Declaration()
    add(**{"optim.lr": 1e-3})
    add(**{"optim.lr": 2e-3})
    add.grid({"train.steps": [1, 2]})
    assert [type(b).__name__ for b in add.blocks] == ["Points", "Points"]
    assert len(add.points()) == 4 and add.bayes_search() is None
    add.bayes(3, {"optim.lr": loguniform(1e-4, 1e-2)}, objective="loss")
    with pytest.raises(ConfigError, match="not both"):
        add.bayes_search()
    with pytest.raises(ConfigError, match="positive trial count"):
        Declaration().random(0, {"optim.lr": uniform(0, 1)})
    with pytest.raises(ConfigError, match="0 < low"):
        loguniform(0, 1)


def test_plan_names_each_trial_dir_with_runs_naming(tmp_path):
    spec = write_experiment(tmp_path, 'add.grid({"optim.lr": [1e-3, 2e-3]})\n'
                            'add(**{"train.fast": True})')
    plan = plan_sweep(spec, ["--config.train.steps=5"], sweep_dir=tmp_path / "sw")
    assert plan.name == "exp-sweep" and plan.bayes is None
    assert [t.overrides for t in plan.trials] == [
        {"optim.lr": "0.001"}, {"optim.lr": "0.002"}, {"train.fast": "true"}]
    for t in plan.trials:
        assert t.run_dir == tmp_path / "sw" / run_name(spec, "", t.overrides)
    assert plan.find("1") is plan.trials[1] and plan.find(plan.trials[2].name) is plan.trials[2]
    with pytest.raises(ConfigError, match="no trial"):
        plan.find("7")


def test_override_values_parse_back_to_the_declared_types(tmp_path):
    spec = write_experiment(tmp_path, "pass")
    values = {"optim.lr": 3e-4, "train.fast": True, "data.paths": ("x", "y"),
              "optim.warmup_steps": 12}
    args = [f"--config.{k}={format_value(v)}" for k, v in values.items()]
    config = get_experiment_config(spec, args)
    assert config.optim.lr == 3e-4 and config.train.fast is True
    assert tuple(config.data.paths) == ("x", "y") and config.optim.warmup_steps == 12


@pytest.mark.parametrize("body, message", [
    ('add(**{"optim.lrr": 1e-3})', "did you mean 'optim.lr'"),
    ('add(**{"train.steps": "many"})', "expects int"),
    ('add(**{"optim.lr": 1e-3})\nadd(**{"optim.lr": 1e-3})', "same run"),
    ("pass", "declared no trials"),
    ('add.bayes(2, {"optim.lr": loguniform(1e-4, 1e-2)}, objective="loss", direction="up")',
     "minimize or maximize"),
])
def test_user_mistakes_are_config_errors(tmp_path, body, message):
    body = "from llm_jax.sweep import loguniform\n" + body
    spec = write_experiment(tmp_path, body)
    with pytest.raises(ConfigError, match=message):
        plan_sweep(spec, sweep_dir=tmp_path / "sw")


def test_missing_sweep_function_and_bad_shared_override(tmp_path):
    path = tmp_path / "nosweep.py"
    path.write_text("import ml_collections\n"
                    "def get_config(arg=None):\n"
                    "    return ml_collections.ConfigDict({'optim': {'lr': 1.0}})\n")
    with pytest.raises(ConfigError, match=r"defines no sweep\(add, arg=None\)"):
        plan_sweep(str(path))
    spec = write_experiment(tmp_path, 'add(**{"optim.lr": 1e-3})')
    with pytest.raises(ConfigError, match="unknown config key 'optim.nope'"):
        plan_sweep(spec, ["--config.optim.nope=1"])
    with pytest.raises(ConfigError, match="experiment file not found"):
        plan_sweep(str(tmp_path / "missing.py"))


def test_bayes_plan_checks_its_space_without_trials(tmp_path):
    spec = write_experiment(tmp_path, "from llm_jax.sweep import loguniform\n"
                            'add.bayes(3, {"optim.lr": loguniform(1e-4, 1e-2)}, '
                            'objective="eval_loss")')
    plan = plan_sweep(spec, sweep_dir=tmp_path / "sw")
    assert plan.trials == [] and plan.bayes.n == 3 and plan.bayes.direction == "minimize"
    assert math.isclose(plan.bayes.space["optim.lr"].low, 1e-4)


@pytest.mark.parametrize("path", sorted(
    str(p) for p in (Path(__file__).resolve().parents[2] / "experiments").glob("*.py")
    if "def sweep(" in p.read_text()))
def test_every_experiment_sweep_plans(path, tmp_path):
    plan = plan_sweep(path, sweep_dir=tmp_path)
    assert plan.trials or plan.bayes is not None
    assert len({t.run_dir for t in plan.trials}) == len(plan.trials)
