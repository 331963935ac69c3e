"""Weights & Biases tracking that never blocks or prompts, plus the local metrics.jsonl mirror.

Mode "auto" goes online only with a configured key and a server that answers a 2-second
probe; WANDB_MODE/WANDB_DISABLED override it. A failed online start falls back to offline
with one warning. The W&B run id is kept in the run directory, so a rerun resumes it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_jax.runs import SUMMARY_FILE, WANDB_DIR, WANDB_RUN_ID_FILE
from llm_jax.tracking.metrics_log import MetricsLog, SamplesLog, json_value, to_python

log = logging.getLogger(__name__)

RUN_ID_FILE = WANDB_RUN_ID_FILE
MODES = ("auto", "online", "offline", "disabled")


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    project: str = "llm-jax"
    name: str | None = None
    group: str | None = None
    job_type: str = "pretrain"
    mode: str = "auto"  # auto | online | offline | disabled
    entity: str | None = None
    tags: tuple[str, ...] = ()
    init_timeout_s: float = 10.0  # bound on an online wandb.init that got past the probe
    probe_timeout_s: float = 2.0  # bound on the reachability probe before going online

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"wandb mode {self.mode!r} is not one of {MODES}")


# wandb reads these when it sets itself up: WANDB_SILENT drops its "Loaded credentials" and
# banner lines that would break a progress bar; WANDB_ERROR_REPORTING=false stops its
# telemetry exporter, which after a failed online start would otherwise spend ~20 s at
# interpreter exit retrying the unreachable server. A value the user set is left alone.
_QUIET_WANDB_ENV = {"WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false"}


@contextlib.contextmanager
def _quiet_wandb() -> Iterator[None]:
    """Keep wandb's start/stop from printing; our single warning says what happened."""
    added = [k for k in _QUIET_WANDB_ENV if k not in os.environ]
    os.environ.update({k: _QUIET_WANDB_ENV[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _env_mode() -> str | None:
    if os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1", "yes"):
        return "disabled"
    env = os.environ.get("WANDB_MODE", "").lower()
    if env == "disabled":
        return "disabled"
    if env in ("offline", "dryrun"):
        return "offline"
    return None


def wandb_base_url() -> str:
    """The server wandb would talk to: WANDB_BASE_URL, else `wandb login --host`, else SaaS."""
    from wandb.sdk import wandb_setup

    return wandb_setup.singleton().settings.base_url


def api_key_configured(base_url: str) -> bool:
    """Whether wandb has credentials for `base_url`, looked up as `wandb.init` does, offline."""
    from wandb.errors import AuthenticationError
    from wandb.sdk.lib import wbauth

    try:
        auth = wbauth.authenticate_session(host=base_url, source="llm-jax", prompt=False,
                                           update_session=False)
    except AuthenticationError:
        return True
    return auth is not None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx already proves the server answers; following it only costs time


def probe_server(base_url: str, timeout_s: float) -> str | None:
    """One HTTP request to the W&B server: None if it answers, else why."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(base_url, method="HEAD"), timeout=timeout_s):
            return None
    except urllib.error.HTTPError:  # 4xx / 5xx / unfollowed 3xx: an HTTP server is there
        return None
    except urllib.error.URLError as e:  # refused, DNS, TLS
        return str(e.reason)
    except (OSError, ValueError) as e:  # timed out, malformed URL
        return str(e) or type(e).__name__


def choose_mode(requested: str, probe_timeout_s: float = 2.0) -> tuple[str, str | None]:
    """(mode to use, why it differs from the requested one or None); "auto" without key: offline."""
    env = _env_mode()
    if requested == "disabled" or env == "disabled":
        return "disabled", None
    if requested == "offline" or env == "offline":
        return "offline", None
    base_url = wandb_base_url()
    if not api_key_configured(base_url):
        return "offline", (None if requested == "auto" else "no W&B API key is configured")
    if (problem := probe_server(base_url, probe_timeout_s)) is not None:
        return "offline", f"the W&B server {base_url} is unreachable ({problem})"
    return "online", None


class Tracker:
    """Logs scalars and text samples to W&B (when possible) and to JSONL files in the run dir."""

    def __init__(self, run_dir: str | Path, cfg: TrackerConfig, config: dict, *,
                 is_main_process: bool = True, resume_id: str | None = None):
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        self.active = is_main_process
        self.mode = "disabled"
        self.run_id: str | None = None
        self._run = None
        self._wandb_warned = False
        if not self.active:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = MetricsLog(self.run_dir)
        self.samples = SamplesLog(self.run_dir)
        if cfg.mode == "disabled" or _env_mode() == "disabled":
            return  # never import wandb: it costs half a second and may touch ~/.config
        with _quiet_wandb():
            self._start_wandb(config, resume_id)

    def _start_wandb(self, config: dict, resume_id: str | None) -> None:
        try:
            mode, reason = choose_mode(self.cfg.mode, self.cfg.probe_timeout_s)
        except Exception as e:  # noqa: BLE001 - e.g. an unreadable wandb settings or netrc file
            mode, reason = "offline", f"could not read the W&B settings ({type(e).__name__}: {e})"
        run_id = resume_id or self._stored_run_id() or uuid.uuid4().hex[:8]
        error = None
        if mode == "online":
            self._run, error = self._init_wandb("online", run_id, config)
            if self._run is None:
                reason = f"wandb.init failed ({error})"
                mode = "offline"
                # A timed-out online start leaves wandb's service holding the run id ("run ID
                # is in use"); restarting the service frees it for the offline run.
                import wandb

                with contextlib.suppress(Exception):
                    wandb.teardown()
        if mode == "offline" and self._run is None:
            self._run, error = self._init_wandb("offline", run_id, config)
            if self._run is None:
                mode = "disabled"
        if self._run is not None:
            self.run_id = self._run.id
            (self.run_dir / RUN_ID_FILE).write_text(self.run_id + "\n")
        self.mode = mode
        if mode == "disabled":
            log.warning("W&B could not start even offline (%s); training continues and logs to "
                        "%s only.", error, self.metrics.path)
        elif reason:
            log.warning("W&B: %s; training continues offline. Upload the run later with "
                        "`wandb sync %s`. metrics.jsonl is written either way.",
                        reason, self.run_dir / WANDB_DIR / "offline-run-*")
        elif mode == "online":
            log.info("W&B run: %s", self._run.url)

    def _stored_run_id(self) -> str | None:
        path = self.run_dir / RUN_ID_FILE
        return (path.read_text().strip() or None) if path.exists() else None

    def _init_wandb(self, mode: str, run_id: str, config: dict) -> tuple[Any, str | None]:
        import wandb

        settings = wandb.Settings(
            init_timeout=self.cfg.init_timeout_s,
            console="off",  # leave stdout/stderr (and the progress bar) alone
            silent=True, quiet=True,
        )
        try:
            run = wandb.init(
                project=self.cfg.project, entity=self.cfg.entity, name=self.cfg.name,
                group=self.cfg.group, job_type=self.cfg.job_type, tags=list(self.cfg.tags),
                config=config, dir=str(self.run_dir), id=run_id, resume="allow", mode=mode,
                reinit="create_new", settings=settings)
        except Exception as e:  # noqa: BLE001 - any failure must fall back, never stop training
            return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return run, None

    def _wandb_call(self, fn, *args, **kwargs) -> None:
        """Run one wandb call; if wandb breaks mid-run, stop using it and keep training."""
        if self._run is None:
            return
        try:
            fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - a tracking failure must not end a training run
            if not self._wandb_warned:
                self._wandb_warned = True
                log.warning("W&B logging failed (%s: %s); training continues, metrics.jsonl "
                            "keeps every step.", type(e).__name__, e)
            self._run = None

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """One row of scalars at `step`: to metrics.jsonl always, and to W&B when it is on."""
        if not self.active:
            return
        values = {k: to_python(v) for k, v in metrics.items()}
        self.metrics.log(step, values)
        if self._run is not None:
            self._wandb_call(self._run.log, values, step=int(step))

    def log_samples(self, step: int, rows: Sequence[Mapping[str, str]]) -> None:
        """Text samples (e.g. prompt/completion): to samples.jsonl, and as a W&B table."""
        if not self.active or not rows:
            return
        self.samples.log(step, rows)
        if self._run is not None:
            import wandb

            columns = list(dict.fromkeys(k for row in rows for k in row if k != "step"))
            data = [[step, *(str(row.get(c, "")) for c in columns)] for row in rows]
            self._wandb_call(lambda: self._run.log(
                {"samples": wandb.Table(columns=["step", *columns], data=data)}, step=int(step)))

    def summary(self, **values: Any) -> None:
        """Run-level facts (parameter count, final eval...): W&B summary and summary.json."""
        if not self.active:
            return
        path = self.run_dir / SUMMARY_FILE
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged.update({k: json_value(v) for k, v in values.items()})
        path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
        if self._run is not None:
            self._wandb_call(self._run.summary.update, {k: to_python(v) for k, v in values.items()})

    def truncate_after(self, step: int) -> None:
        """Forget local rows after `step` on resume (W&B cannot rewind)."""
        if self.active:
            self.metrics.truncate_after(step)
            self.samples.truncate_after(step)

    def finish(self) -> None:
        """Close the W&B run (an online run uploads what is left); safe to call twice."""
        if self._run is not None:
            run, self._run = self._run, None
            with _quiet_wandb():
                try:
                    run.finish()
                except Exception as e:  # noqa: BLE001 - the metrics are already on disk
                    log.warning("W&B finish failed (%s); metrics.jsonl is complete.", e)
