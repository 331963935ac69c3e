"""Tracker: offline W&B run dir, metrics.jsonl mirror, fast fallback, resume, main-process only."""

import http.server
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from llm_jax.tracking.metrics_log import MetricsLog, SamplesLog, read_metrics
from llm_jax.tracking.tracker import RUN_ID_FILE, Tracker, TrackerConfig

FAKE_KEY = "x" * 40
DEAD_URL = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """No key anywhere wandb looks (env, ~/.netrc, settings file) and no WANDB_MODE override."""
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_DISABLED",
                "WANDB_BASE_URL", "NETRC", "WANDB_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / ".config" / "wandb"))
    _reset_wandb_setup()
    yield
    _reset_wandb_setup()


def _reset_wandb_setup():
    # wandb caches the environment it saw (base URL, credentials) in a process-wide singleton;
    # each test sets its own environment, so the singleton must be rebuilt.
    import wandb

    wandb.teardown()


def _warnings(caplog):
    """Warnings and errors that reach the console.

    The "wandb" logger does not propagate (its records go to wandb's own files under
    <run_dir>/wandb/), but caplog attaches to non-propagating loggers too, so they are left out
    here; `test_failed_init_console_output_and_exit` checks the real console in a subprocess.
    """
    return [r for r in caplog.records if r.levelno >= logging.WARNING
            and not (r.name == "wandb" or r.name.startswith("wandb."))]


def test_offline_writes_wandb_run_and_metrics(tmp_path):
    tracker = Tracker(tmp_path, TrackerConfig(mode="offline", name="t"), {"model": {"d": 64}})
    tracker.log(1, {"loss": 5.0, "lr": np.float32(1e-3)})
    tracker.log(2, {"loss": 4.0})
    tracker.log(2, {"eval_loss": 4.5, "eval_bpb": 1.25})
    tracker.summary(n_params=1234)
    tracker.finish()
    assert tracker.mode == "offline" and tracker.run_id
    runs = list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 1 and rows[0]["loss"] == 5.0
    assert rows[0]["lr"] == pytest.approx(1e-3) and isinstance(rows[0]["lr"], float)
    assert rows[1] == {"step": 2, "loss": 4.0}
    assert rows[2] == {"step": 2, "eval_loss": 4.5, "eval_bpb": 1.25}
    assert json.loads((tmp_path / "summary.json").read_text()) == {"n_params": 1234}
    assert (tmp_path / RUN_ID_FILE).read_text().strip() == tracker.run_id


def test_log_samples_offline(tmp_path):
    tracker = Tracker(tmp_path, TrackerConfig(mode="offline"), {})
    tracker.log(3, {"loss": 1.0})
    tracker.log_samples(3, [{"prompt": "Hi", "completion": " there"},
                            {"prompt": "Once", "completion": " upon a time"}])
    tracker.finish()
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert rows == [{"step": 3, "prompt": "Hi", "completion": " there"},
                    {"step": 3, "prompt": "Once", "completion": " upon a time"}]


def test_nan_and_inf_keep_metrics_valid_json(tmp_path):
    tracker = Tracker(tmp_path, TrackerConfig(mode="offline"), {})
    tracker.log(1, {"loss": float("nan"), "grad_norm": np.float32("inf"), "x": -math.inf})
    tracker.finish()
    line = (tmp_path / "metrics.jsonl").read_text()
    assert json.loads(line) == {"step": 1, "loss": "nan", "grad_norm": "inf", "x": "-inf"}
    (row,) = read_metrics(tmp_path / "metrics.jsonl")
    assert math.isnan(row["loss"]) and row["grad_norm"] == math.inf and row["x"] == -math.inf


def test_auto_without_key_is_offline_without_warning(tmp_path, no_credentials, caplog):
    with caplog.at_level(logging.WARNING):
        tracker = Tracker(tmp_path / "run", TrackerConfig(mode="auto"), {})
        tracker.log(1, {"loss": 1.0})
        tracker.finish()
    assert tracker.mode == "offline"
    assert list((tmp_path / "run").glob("wandb/offline-run-*/run-*.wandb"))
    assert not _warnings(caplog)


def test_online_without_key_warns_and_goes_offline(tmp_path, no_credentials, caplog):
    with caplog.at_level(logging.WARNING):
        tracker = Tracker(tmp_path / "run", TrackerConfig(mode="online"), {})
        tracker.finish()
    assert tracker.mode == "offline"
    (warning,) = _warnings(caplog)
    assert "no W&B API key" in warning.getMessage()


def test_fake_key_dead_server_falls_back_fast(tmp_path, no_credentials, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", DEAD_URL)
    _reset_wandb_setup()
    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        tracker = Tracker(tmp_path / "run", TrackerConfig(mode="auto"), {"x": 1})
    elapsed = time.monotonic() - start
    tracker.log(1, {"loss": 1.0})
    tracker.finish()
    # the probe sees the refused connection at once; wandb.init alone would wait init_timeout
    assert elapsed < 5, f"fallback took {elapsed:.1f}s"
    assert tracker.mode == "offline"
    (warning,) = _warnings(caplog)
    message = warning.getMessage()
    assert "training continues offline" in message and "wandb sync" in message
    assert list((tmp_path / "run").glob("wandb/offline-run-*/run-*.wandb"))
    assert read_metrics(tmp_path / "run" / "metrics.jsonl") == [{"step": 1, "loss": 1.0}]


@pytest.fixture
def hung_server():
    """A W&B URL whose server answers the reachability probe (HEAD) but never answers an API
    call (POST), like a server behind a broken proxy: wandb.init can only time out."""

    class Hang(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def do_POST(self):
            time.sleep(30)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fake_key_hung_server_is_bounded_by_init_timeout(tmp_path, no_credentials, monkeypatch,
                                                         caplog, hung_server):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", hung_server)
    _reset_wandb_setup()
    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        tracker = Tracker(tmp_path / "run", TrackerConfig(mode="auto", init_timeout_s=2), {})
    elapsed = time.monotonic() - start
    tracker.log(1, {"loss": 1.0})
    tracker.finish()
    assert elapsed < 10, f"fallback took {elapsed:.1f}s"
    assert tracker.mode == "offline"
    (warning,) = _warnings(caplog)
    assert "wandb.init failed" in warning.getMessage()
    # the offline run keeps the id the online attempt used, so a later resume finds it
    (offline,) = (tmp_path / "run").glob("wandb/offline-run-*")
    assert offline.name.endswith(tracker.run_id)
    assert (tmp_path / "run" / RUN_ID_FILE).read_text().strip() == tracker.run_id
    assert read_metrics(tmp_path / "run") == [{"step": 1, "loss": 1.0}]


FALLBACK_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
from llm_jax.tracking.tracker import Tracker, TrackerConfig
tracker = Tracker(sys.argv[1], TrackerConfig(mode="auto", init_timeout_s=2), {"x": 1})
tracker.log(1, {"loss": 1.0})
tracker.log_samples(1, [{"prompt": "a", "completion": "b"}])
tracker.finish()
print("mode", tracker.mode)
"""


def test_failed_init_console_output_and_exit(tmp_path, no_credentials, hung_server):
    """In a fresh process, as in training, after wandb.init itself failed: one warning line,
    no wandb traceback or banner, and the process exits promptly (wandb's telemetry would
    otherwise retry the dead server for ~20 s at exit)."""
    env = {**os.environ, "WANDB_API_KEY": FAKE_KEY, "WANDB_BASE_URL": hung_server}
    env.pop("WANDB_SILENT", None)
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT, str(tmp_path / "run")], env=env,
                         capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "mode offline"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("WARNING llm_jax.tracking.tracker"), lines
    assert "wandb.init failed" in lines[0] and "wandb sync" in lines[0]
    assert elapsed < 15, f"process took {elapsed:.1f}s"  # init_timeout 2 s + startup


def test_disabled_writes_metrics_but_no_wandb(tmp_path):
    tracker = Tracker(tmp_path, TrackerConfig(mode="disabled"), {})
    tracker.log(1, {"loss": 2.0})
    tracker.log_samples(1, [{"prompt": "a", "completion": "b"}])
    tracker.finish()
    assert tracker.mode == "disabled" and tracker.run_id is None
    assert not (tmp_path / "wandb").exists() and not (tmp_path / RUN_ID_FILE).exists()
    assert read_metrics(tmp_path / "metrics.jsonl") == [{"step": 1, "loss": 2.0}]
    assert (tmp_path / "samples.jsonl").exists()


def test_wandb_mode_env_overrides_config(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    tracker = Tracker(tmp_path, TrackerConfig(mode="offline"), {})
    tracker.log(1, {"loss": 2.0})
    tracker.finish()
    assert tracker.mode == "disabled" and not (tmp_path / "wandb").exists()
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 2.0}]


def test_non_main_process_writes_nothing(tmp_path):
    tracker = Tracker(tmp_path / "run", TrackerConfig(mode="offline"), {}, is_main_process=False)
    tracker.log(1, {"loss": 2.0})
    tracker.log_samples(1, [{"prompt": "a", "completion": "b"}])
    tracker.summary(x=1)
    tracker.truncate_after(0)
    tracker.finish()
    assert tracker.mode == "disabled" and tracker.run_id is None
    assert not (tmp_path / "run").exists()


def test_resume_reuses_run_id_and_truncates(tmp_path):
    first = Tracker(tmp_path, TrackerConfig(mode="offline"), {})
    for step in range(1, 6):
        first.log(step, {"loss": 1.0 / step})
    first.log_samples(5, [{"prompt": "p", "completion": "c"}])
    run_id = first.run_id
    first.finish()
    second = Tracker(tmp_path, TrackerConfig(mode="offline"), {})
    assert second.run_id == run_id
    second.truncate_after(3)  # resumed from the step-3 checkpoint
    second.log(4, {"loss": 0.2})
    second.finish()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    assert read_metrics(tmp_path)[-1] == {"step": 4, "loss": 0.2}
    assert (tmp_path / "samples.jsonl").read_text() == ""
    explicit = Tracker(tmp_path, TrackerConfig(mode="offline"), {}, resume_id="abc123")
    explicit.finish()
    assert explicit.run_id == "abc123"
    assert (tmp_path / RUN_ID_FILE).read_text().strip() == "abc123"


def test_metrics_log_appends_and_repairs_a_torn_line(tmp_path):
    MetricsLog(tmp_path).log(1, {"loss": 3.0})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "lo')  # killed mid-write
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 3.0}]
    resumed = MetricsLog(tmp_path)
    resumed.log(2, {"loss": 2.0})
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}]
    resumed.truncate_after(1)
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 3.0}]
    samples = SamplesLog(tmp_path)
    samples.log(7, [{"prompt": "nan", "completion": "x"}])
    assert json.loads((tmp_path / "samples.jsonl").read_text())["prompt"] == "nan"
