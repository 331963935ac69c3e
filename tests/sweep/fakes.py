"""Sweep test helpers: a cheap experiment file and a fake trial command (fake_trial.py).

Every sweep runner test runs real subprocesses through `llm_jax.sweep.runner`; only the
command each trial runs is the fake trainer, so a trial takes a fraction of a second.
"""

import sys
import textwrap
from pathlib import Path

FAKE_TRIAL = Path(__file__).with_name("fake_trial.py")
ROOT = Path(__file__).resolve().parents[2]

EXPERIMENT = '''
import ml_collections

def get_config(arg=None):
    return ml_collections.ConfigDict({{
        "run": {{"name": ""}}, "optim": {{"lr": 1e-3, "warmup_steps": 0}},
        "train": {{"steps": 3, "fast": False}}, "data": {{"paths": ("a",)}},
        "wandb": {{"group": "", "project": "p", "entity": ""}}}})

def sweep(add, arg=None):
{body}
'''


def write_experiment(root: Path, body: str, name: str = "exp") -> str:
    """An experiment file `<root>/<name>.py` whose sweep() runs `body`; returns its path."""
    path = root / f"{name}.py"
    path.write_text(EXPERIMENT.format(body=textwrap.indent(textwrap.dedent(body), "    ")))
    return str(path)


def fake_command(calls_log: Path):
    """A runner `command` that runs fake_trial.py in place of `llm-jax train`."""
    return lambda plan, trial: [sys.executable, str(FAKE_TRIAL), str(calls_log),
                                str(trial.run_dir), *trial.args()]


def driver_script(root: Path, calls_log: Path) -> Path:
    """A script running `llm-jax sweep ARGS...` with fake trials, for tests that kill it.
    It calls the sweep command itself, not `llm_jax.cli.main`, whose imports take seconds."""
    path = root / "driver.py"
    path.write_text(textwrap.dedent(f"""
        import argparse, logging, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.sweep.fakes import fake_command
        from llm_jax.sweep import runner
        runner.train_command = fake_command({str(calls_log)!r})
        from llm_jax.commands.sweep import add_commands
        logging.basicConfig(level=logging.INFO)
        parser = argparse.ArgumentParser()
        add_commands(parser.add_subparsers())
        args, rest = parser.parse_known_args(sys.argv[1:])
        sys.exit(args.func(args, rest))
    """))
    return path


def calls(calls_log: Path) -> list[str]:
    """The run names fake_trial.py was started for, in order."""
    return calls_log.read_text().splitlines() if calls_log.exists() else []
