"""compare: differing config keys, best = min or max by metric name, PNG overlays, W&B links,
and `llm-jax compare --sweep`."""

import json

from llm_jax.cli import main
from llm_jax.runs import WANDB_RUN_ID_FILE
from llm_jax.tracking.compare import (
    compare_runs,
    differing_keys,
    final_metrics,
    flatten,
    higher_is_better,
    plot_compare,
    wandb_link,
)
from llm_jax.tracking.metrics_log import MetricsLog

BASE = {"run": {"name": ""}, "optim": {"lr": 1e-3, "b1": 0.9}, "data": {"paths": ["a"]},
        "wandb": {"project": "p", "group": "g"}}


def _run(path, config, losses, accuracy):
    """A run directory as the tracker leaves it: config.json and metrics.jsonl."""
    log = MetricsLog(path)
    for step, loss in enumerate(losses, start=1):
        log.log(step, {"loss": loss})
    for step, acc in accuracy:
        log.log(step, {"accuracy": acc, "eval_loss": 1 - acc})
    (path / "config.json").write_text(json.dumps(config))
    return path


def _two_runs(root):
    a = _run(root / "lr=0.001", BASE, [3.0, 2.0, 2.5], [(2, 0.4), (3, 0.3)])
    other = json.loads(json.dumps(BASE))
    other["optim"]["lr"] = 3e-3
    other["data"]["paths"] = ["a", "b"]
    b = _run(root / "lr=0.003", other, [3.0, 1.5, 1.8], [(2, 0.5), (3, 0.6)])
    return a, b


def test_flatten_and_differing_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1],
                                                                  "e": {}}
    other = {**BASE, "optim": {"lr": 3e-3, "b1": 0.9}, "extra": 1}
    assert differing_keys([BASE, other, BASE]) == ["extra", "optim.lr"]


def test_best_is_min_for_losses_and_max_for_scores():
    for name in ("accuracy", "eval_accuracy", "math/accuracy", "reward", "mean_reward",
                 "pass@8", "eval/pass@1", "score"):
        assert higher_is_better(name), name
    for name in ("loss", "eval_loss", "kl", "reward_std", "frac_reward_zero_std", "accum_steps"):
        assert not higher_is_better(name), name
    assert higher_is_better("win_frac", maximize=["win_frac"])


def test_table_has_differing_config_final_and_best(tmp_path):
    a, b = _two_runs(tmp_path)
    table = compare_runs([a, b], ["loss", "accuracy", "eval_loss"])
    header, row_a, row_b = table.splitlines()
    assert "data.paths" in header and "optim.lr" in header and "optim.b1" not in header
    assert "loss (last / min@step)" in header and "accuracy (last / max@step)" in header
    assert row_a.startswith("lr=0.001") and "0.001" in row_a and '["a"]' in row_a
    assert "2.5 / 2@2" in row_a and "0.3 / 0.4@2" in row_a and "0.7 / 0.6@2" in row_a
    assert "1.8 / 1.5@2" in row_b and "0.6 / 0.6@3" in row_b and '["a", "b"]' in row_b
    assert final_metrics(b) == {"loss": 1.8, "accuracy": 0.6, "eval_loss": 0.4}


def test_many_differences_get_their_own_table(tmp_path):
    a, b = _two_runs(tmp_path)
    config = json.loads((b / "config.json").read_text())
    config["train"] = {f"k{i}": i for i in range(6)}
    (b / "config.json").write_text(json.dumps(config))
    table = compare_runs([a, b], ["loss"])
    first, differences = table.split("\n\n")[:2]
    assert "optim.lr" not in first.splitlines()[0]
    assert differences.startswith("config differences:")
    assert any(line.startswith("train.k5") and line.rstrip().endswith("5")
               for line in differences.splitlines())


def test_overlay_plots_are_pngs(tmp_path):
    a, b = _two_runs(tmp_path)
    written = plot_compare([a, b], ["loss", "accuracy", "never_logged"], tmp_path / "out")
    assert [p.name for p in written] == ["loss.png", "accuracy.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_wandb_link_only_for_a_run_that_reached_a_server(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_APP_URL", "https://wandb.example")  # no lookup, no network
    a, b = _two_runs(tmp_path)
    for run, folder in ((a, "run-20260101_000000-abc123"),
                        (b, "offline-run-20260101_000000-def456")):
        run_id = folder.rsplit("-", 1)[1]
        (run / WANDB_RUN_ID_FILE).write_text(run_id + "\n")
        logs = run / "wandb" / folder / "logs"
        logs.mkdir(parents=True)
        (logs / "debug.log").write_text(f"... INFO finishing run ent/proj/{run_id}\n")
    assert wandb_link(a) == "https://wandb.example/ent/proj/runs/abc123"
    assert wandb_link(b) is None  # offline and never synced
    (b / "wandb" / "offline-run-20260101_000000-def456" / "run-def456.wandb.synced").touch()
    assert wandb_link(b) == "https://wandb.example/ent/proj/runs/def456"
    assert "W&B:" in compare_runs([a, b])
    (a / "summary.json").write_text(json.dumps({"wandb_url": "https://x.example/r/1"}))
    assert wandb_link(a) == "https://x.example/r/1"


def test_cli_compare_sweep_writes_plots(tmp_path, capsys):
    sweep_dir = tmp_path / "sw"
    a, b = _two_runs(sweep_dir)
    with open(sweep_dir / "sweep.jsonl", "w") as f:
        for i, run in enumerate((b, a)):
            f.write(json.dumps({"trial": i, "name": run.name, "run_dir": str(run),
                                "status": "ok"}) + "\n")
    assert main(["compare", "--sweep", str(sweep_dir), "--metric", "accuracy"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].startswith("lr=0.003") and lines[2].startswith("lr=0.001")  # trial order
    assert (sweep_dir / "compare" / "accuracy.png").is_file() and "plots:" in out
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    assert not (tmp_path / "o").exists()
    assert main(["compare"]) == 2
    assert "RUN_DIR... or --sweep DIR" in capsys.readouterr().err
