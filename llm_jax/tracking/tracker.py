"""Weights & Biases tracking that never blocks, plus the local metrics.jsonl mirror.

Mode "auto" goes online only when an API key is configured AND the server answers a quick
probe; otherwise, or when `wandb.init` fails for any reason, the run logs offline
(`wandb sync <run_dir>/wandb/offline-run-*` uploads it later) with one warning. Every logged
step also lands in `<run_dir>/metrics.jsonl`, whatever W&B does. Only the main process logs.
"""

from __future__ import annotations

import dataclasses
import logging
import netrc
import os
import socket
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from llm_jax.tracking.metrics_log import JsonlLog, write_samples

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.wandb.ai"


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    project: str = "llm-jax"
    name: str | None = None
    group: str | None = None
    job_type: str = "pretrain"
    mode: str = "auto"  # auto | online | offline | disabled
    entity: str | None = None
    tags: tuple[str, ...] = ()
    init_timeout_s: float = 10.0
    probe_timeout_s: float = 2.0


def _base_url() -> str:
    return os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)


def api_key_present() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urllib.parse.urlparse(_base_url()).hostname or ""
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def server_reachable(timeout_s: float) -> bool:
    """A TCP connect to the W&B server: seconds at most, where wandb itself may wait minutes."""
    url = urllib.parse.urlparse(_base_url())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def choose_mode(requested: str, probe_timeout_s: float = 2.0) -> tuple[str, str | None]:
    """(mode to use, reason when it is not what was asked for)."""
    env = os.environ.get("WANDB_MODE", "").lower()
    if requested == "disabled" or env == "disabled":
        return "disabled", None
    if requested == "offline" or env in ("offline", "dryrun"):
        return "offline", None
    if not api_key_present():
        reason = None if requested == "auto" else "no W&B API key configured"
        return "offline", reason
    if not server_reachable(probe_timeout_s):
        return "offline", f"W&B server {_base_url()} did not answer"
    return "online", None


class Tracker:
    """Logs scalars and text samples to W&B (when possible) and to JSONL files in the run dir."""

    def __init__(self, run_dir: str | Path, cfg: TrackerConfig, config: dict, *,
                 is_main_process: bool = True):
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        self.active = is_main_process
        self.mode = "disabled"
        self.run = None
        if not self.active:
            return
        self.metrics = JsonlLog(self.run_dir / "metrics.jsonl")
        self.samples = JsonlLog(self.run_dir / "samples.jsonl")
        mode, reason = choose_mode(cfg.mode, cfg.probe_timeout_s)
        if mode != "disabled":
            self.run = self._init_wandb(mode, config)
            if self.run is None and mode == "online":
                reason = reason or "wandb.init failed"
                self.run = self._init_wandb("offline", config)
                mode = "offline" if self.run is not None else "disabled"
            elif self.run is None:
                mode = "disabled"
        if reason:
            log.warning("W&B: %s; training continues offline (upload later with `wandb sync "
                        "%s/wandb/offline-run-*`). metrics.jsonl is written either way.",
                        reason, self.run_dir)
        self.mode = mode

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def _init_wandb(self, mode: str, config: dict):
        import wandb

        id_file = self.run_dir / "wandb_run_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:8]
        (self.run_dir / "wandb").mkdir(parents=True, exist_ok=True)
        try:
            run = wandb.init(
                project=self.cfg.project, entity=self.cfg.entity, name=self.cfg.name,
                group=self.cfg.group, job_type=self.cfg.job_type, tags=list(self.cfg.tags),
                config=config, dir=str(self.run_dir), id=run_id, resume="allow", mode=mode,
                settings=wandb.Settings(init_timeout=self.cfg.init_timeout_s, console="off",
                                        silent=True, quiet=True))
        except Exception as e:  # noqa: BLE001 - any failure must fall back, never stop training
            log.debug("wandb.init(%s) failed: %s", mode, e)
            return None
        id_file.write_text(run_id)
        return run

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self.active:
            return
        self.metrics.write(step, metrics)
        if self.run is not None:
            self.run.log(dict(metrics), step=step)

    def log_samples(self, step: int, rows: Sequence[Mapping[str, str]]) -> None:
        if not self.active or not rows:
            return
        write_samples(self.samples, step, rows)
        if self.run is not None:
            import wandb

            columns = list(rows[0])
            table = wandb.Table(columns=["step", *columns],
                                data=[[step, *(r[c] for c in columns)] for r in rows])
            self.run.log({"samples": table}, step=step)

    def summary(self, **values) -> None:
        if self.active and self.run is not None:
            self.run.summary.update(values)

    def truncate_after(self, step: int) -> None:
        """Forget local rows after `step` when resuming from an older checkpoint."""
        if self.active:
            self.metrics.truncate_after(step)
            self.samples.truncate_after(step)

    def finish(self) -> None:
        if self.active and self.run is not None:
            self.run.finish()
            self.run = None
