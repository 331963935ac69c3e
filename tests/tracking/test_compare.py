"""compare_runs: last and best values per run from metrics.jsonl, named from config.json."""

import json

from llm_jax.tracking.compare import compare_runs
from llm_jax.tracking.metrics_log import MetricsLog


def _run(root, name, losses, eval_losses=(), config_name=None):
    run_dir = root / name
    log = MetricsLog(run_dir)
    for step, loss in enumerate(losses, start=1):
        log.log(step, {"loss": loss})
    for step, loss in eval_losses:
        log.log(step, {"eval_loss": loss})
    if config_name is not None:
        (run_dir / "config.json").write_text(json.dumps({"run": {"name": config_name}}))
    return run_dir


def test_compare_runs_last_and_best(tmp_path):
    a = _run(tmp_path, "dir_a", [3.0, 2.0, 2.5], [(2, 2.75), (3, 2.25)], config_name="lr3e-4")
    b = _run(tmp_path, "dir_b", [3.0, 1.5, float("nan")])
    table = compare_runs([a, b])
    lines = table.splitlines()
    assert len(lines) == 3 and "loss" in lines[0] and "eval_loss" in lines[0]
    row_a = next(line for line in lines if line.startswith("lr3e-4"))
    row_b = next(line for line in lines if line.startswith("dir_b"))
    assert "2.5 / 2@2" in row_a and "2.25 / 2.25@3" in row_a
    assert "nan / 1.5@2" in row_b  # a NaN is the last value but never the best
    assert row_b.rstrip().endswith("-")  # dir_b logged no eval_loss


def test_compare_runs_same_names_and_missing_run(tmp_path):
    x = _run(tmp_path / "exp1", "run", [1.0])
    y = _run(tmp_path / "exp2", "run", [0.5])
    table = compare_runs([x, y, tmp_path / "nowhere"], ["loss"])
    assert "exp1/run" in table and "exp2/run" in table
    assert "1 / 1@1" in table and "0.5 / 0.5@1" in table
    assert "no " in table.splitlines()[-1]
