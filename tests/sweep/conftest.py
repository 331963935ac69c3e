"""Sweep fixtures: every trial of a test's sweep runs tests/sweep/fake_trial.py."""

from pathlib import Path

import pytest

from tests.sweep.fakes import fake_command


@pytest.fixture
def calls_log(tmp_path) -> Path:
    return tmp_path / "calls.log"


@pytest.fixture
def fake_trials(monkeypatch, calls_log) -> Path:
    """Trials run fake_trial.py in place of `llm-jax train`; returns its calls log."""
    from llm_jax.sweep import runner

    monkeypatch.setattr(runner, "train_command", fake_command(calls_log))
    return calls_log
