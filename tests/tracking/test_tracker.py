"""W&B tracking: offline run directory, metrics.jsonl mirror, fast fallback, resume."""

import json
import time

from llm_jax.tracking.compare import compare_runs
from llm_jax.tracking.metrics_log import read_metrics
from llm_jax.tracking.tracker import Tracker, TrackerConfig


def _no_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc


def test_offline_writes_run_dir_and_metrics(tmp_path):
    tracker = Tracker(tmp_path, TrackerConfig(mode="offline", name="t"), {"a": {"b": 1}})
    tracker.log(1, {"loss": 5.0, "lr": 1e-3})
    tracker.log(2, {"eval_loss": 4.5})
    tracker.log(3, {"loss": float("nan")})
    tracker.log_samples(2, [{"prompt": "Hi", "completion": " there"}])
    tracker.finish()
    assert tracker.mode == "offline"
    assert list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # every line is valid JSON, even the NaN one
    assert rows[0] == {"step": 1, "loss": 5.0, "lr": 1e-3}
    assert rows[1] == {"step": 2, "eval_loss": 4.5}
    assert rows[2]["loss"] == "nan" and read_metrics(tmp_path / "metrics.jsonl")[2]["loss"] != 0
    sample = json.loads((tmp_path / "samples.jsonl").read_text())
    assert sample == {"step": 2, "prompt": "Hi", "completion": " there"}


def test_auto_without_key_is_offline_silently(tmp_path, monkeypatch, caplog):
    _no_key(monkeypatch, tmp_path)
    with caplog.at_level("WARNING"):
        tracker = Tracker(tmp_path / "run", TrackerConfig(mode="auto"), {})
    tracker.finish()
    assert tracker.mode == "offline"
    assert not [r for r in caplog.records if "W&B" in r.getMessage()]


def test_unreachable_server_falls_back_fast(tmp_path, monkeypatch, caplog):
    _no_key(monkeypatch, tmp_path)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    with caplog.at_level("WARNING"):
        tracker = Tracker(tmp_path / "run", TrackerConfig(mode="auto"), {"x": 1})
    elapsed = time.monotonic() - start
    tracker.log(1, {"loss": 1.0})
    tracker.finish()
    assert elapsed < 15, f"fallback took {elapsed:.1f}s"
    assert tracker.mode == "offline"
    warnings = [r for r in caplog.records if "training continues offline" in r.getMessage()]
    assert len(warnings) == 1
    assert read_metrics(tmp_path / "run" / "metrics.jsonl") == [{"step": 1, "loss": 1.0}]


def test_disabled_writes_metrics_only(tmp_path):
    tracker = Tracker(tmp_path, TrackerConfig(mode="disabled"), {})
    tracker.log(1, {"loss": 2.0})
    tracker.finish()
    assert not (tmp_path / "wandb").exists()
    assert read_metrics(tmp_path / "metrics.jsonl") == [{"step": 1, "loss": 2.0}]


def test_non_main_process_writes_nothing(tmp_path):
    tracker = Tracker(tmp_path, TrackerConfig(mode="offline"), {}, is_main_process=False)
    tracker.log(1, {"loss": 2.0})
    tracker.finish()
    assert not (tmp_path / "metrics.jsonl").exists()


def test_resume_reuses_run_id_and_truncates(tmp_path):
    first = Tracker(tmp_path, TrackerConfig(mode="offline"), {})
    for step in range(1, 6):
        first.log(step, {"loss": 1.0 / step})
    run_id = first.run_id
    first.finish()
    second = Tracker(tmp_path, TrackerConfig(mode="offline"), {})
    second.truncate_after(3)
    second.log(4, {"loss": 0.2})
    assert second.run_id == run_id
    second.finish()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]


def test_compare_runs(tmp_path):
    for name, losses in (("a", [3.0, 2.0, 2.5]), ("b", [3.0, 1.5, 1.7])):
        tracker = Tracker(tmp_path / "exp" / name, TrackerConfig(mode="disabled"), {})
        for step, loss in enumerate(losses, start=1):
            tracker.log(step, {"loss": loss})
    table = compare_runs([tmp_path / "exp" / "a", tmp_path / "exp" / "b"], ["loss"])
    assert "exp/a" in table and "exp/b" in table
    assert "2.5000 / 2.0000@2" in table and "1.7000 / 1.5000@2" in table
