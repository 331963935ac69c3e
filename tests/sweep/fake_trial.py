"""A stand-in for `llm-jax train` that sweep tests run as each trial's subprocess.

    python fake_trial.py CALLS_LOG RUN_DIR --config.optim.lr=0.001 ...

Appends the run directory's name to CALLS_LOG, then writes a metrics.jsonl whose loss is
(log10(lr) + 3)^2 (best at lr=1e-3) and whose accuracy is 1 - loss. Special cases:
`--config.optim.lr=0.666` prints a traceback-like line and exits 3; a file `kill_at` beside
CALLS_LOG holding N makes the N-th call SIGKILL its parent (the sweep) and exit at once,
as a killed sweep would leave it (the file is removed, so it happens once).
"""

import json
import math
import os
import signal
import sys
from pathlib import Path

calls_log, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
overrides = dict(a.removeprefix("--config.").split("=", 1) for a in sys.argv[3:])
with open(calls_log, "a") as f:
    f.write(run_dir.name + "\n")
calls = len(calls_log.read_text().splitlines())

kill_at = calls_log.parent / "kill_at"
if kill_at.exists() and int(kill_at.read_text()) == calls:
    kill_at.unlink()
    os.kill(os.getppid(), signal.SIGKILL)
    sys.exit(0)

lr = float(overrides.get("optim.lr", "0.001"))
print(f"training with lr={lr}")
if lr == 0.666:
    print("ValueError: boom (lr too high)", file=sys.stderr)
    sys.exit(3)
loss = (math.log10(lr) + 3) ** 2
with open(run_dir / "metrics.jsonl", "w") as f:
    for step in (1, 2, 3):
        f.write(json.dumps({"step": step, "loss": loss + 1 / step}) + "\n")
    f.write(json.dumps({"step": 3, "eval_loss": loss, "accuracy": 1 - loss}) + "\n")
(run_dir / "config.json").write_text(json.dumps({"run": {"name": ""}, "optim": {"lr": lr}}))
