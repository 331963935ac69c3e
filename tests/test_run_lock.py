"""`RunLock`: one job per run directory, stale locks taken over, the job's processes let in."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_jax.errors import RunInUseError, UserError
from llm_jax.runs import RunDir, RunLock

ROOT = Path(__file__).resolve().parents[1]

# A process that takes the lock, says so, then sleeps until killed.
HOLDER = ("import sys, time\n"
          "from llm_jax.runs import RunLock\n"
          "lock = RunLock(sys.argv[1]).acquire(job=sys.argv[2])\n"
          "print('held', flush=True)\n"
          "time.sleep(float(sys.argv[3]))\n")


def _holder(path, job="j1", seconds=60.0):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), job, str(seconds)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held", proc.communicate(timeout=60)
    return proc


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          timeout=600, capture_output=True, text=True)
    return int(proc.stdout)


def test_acquire_records_holder_and_release_empties_it(tmp_path):
    lock = RunLock(RunDir(tmp_path).lock).acquire(job="abc")
    record = json.loads((tmp_path / "run.lock").read_text())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    assert record["job"] == "abc" and record["since"]
    lock.release()
    assert (tmp_path / "run.lock").read_text() == ""
    assert RunLock(tmp_path / "run.lock").holder() is None
    RunLock(tmp_path / "run.lock").acquire().release()  # free again
    lock.release()  # twice is harmless


def test_live_holder_in_another_process_is_refused_by_name(tmp_path):
    proc = _holder(tmp_path / "run.lock")
    try:
        with pytest.raises(RunInUseError) as e:
            RunLock(tmp_path / "run.lock").acquire()
        message = str(e.value)
        assert f"pid {proc.pid}" in message and socket.gethostname() in message
        assert "\n" not in message and isinstance(e.value, UserError)
        assert e.value.exit_code == 1
        # the refusal leaves the holder's record untouched
        assert json.loads((tmp_path / "run.lock").read_text())["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_live_holder_in_this_process_is_refused(tmp_path):
    first = RunLock(tmp_path / "run.lock").acquire()
    with pytest.raises(RunInUseError):
        RunLock(tmp_path / "run.lock").acquire()
    first.release()
    RunLock(tmp_path / "run.lock").acquire().release()


def test_lock_of_a_killed_holder_is_taken_over(tmp_path, caplog):
    proc = _holder(tmp_path / "run.lock")
    proc.kill()  # SIGKILL: no chance to release; the record stays behind
    proc.wait(timeout=60)
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] == proc.pid
    with caplog.at_level("WARNING"):
        lock = RunLock(tmp_path / "run.lock").acquire(job="new")
    assert f"pid {proc.pid}" in caplog.text and "no longer running" in caplog.text
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
    lock.release()


def test_stale_record_without_flock_is_taken_over(tmp_path):
    record = {"host": socket.gethostname(), "pid": _dead_pid(), "since": "then", "job": "x"}
    (tmp_path / "run.lock").write_text(json.dumps(record))
    lock = RunLock(tmp_path / "run.lock").acquire()
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
    lock.release()


def test_racing_takeovers_of_a_stale_lock_have_one_winner(tmp_path):
    record = {"host": socket.gethostname(), "pid": _dead_pid(), "since": "then", "job": "x"}
    (tmp_path / "run.lock").write_text(json.dumps(record))
    racer = ("import sys, time\n"
             "from llm_jax.runs import RunLock\n"
             "from llm_jax.errors import RunInUseError\n"
             "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
             "try:\n"
             "    lock = RunLock(sys.argv[1]).acquire()\n"
             "except RunInUseError:\n"
             "    print('refused'); sys.exit(0)\n"
             "print('won', flush=True); time.sleep(2.0)\n")
    start = time.time() + 2.0  # all racers are imported and waiting by then
    procs = [subprocess.Popen([sys.executable, "-c", racer, str(tmp_path / "run.lock"),
                               str(start)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["refused", "refused", "refused", "won"]


def test_other_host_record_is_refused_with_how_to_clear_it(tmp_path):
    record = {"host": "elsewhere-node-7", "pid": 4242, "since": "2026-01-01 00:00:00",
              "job": "x"}
    (tmp_path / "run.lock").write_text(json.dumps(record))
    with pytest.raises(RunInUseError) as e:
        RunLock(tmp_path / "run.lock").acquire()
    message = str(e.value)
    assert "pid 4242 on host elsewhere-node-7" in message
    assert f"delete {tmp_path / 'run.lock'}" in message
    assert json.loads((tmp_path / "run.lock").read_text()) == record  # left as it was


def test_processes_of_the_holding_job_join_and_others_are_refused(tmp_path):
    proc = _holder(tmp_path / "run.lock", job="job-17")
    try:
        RunLock(tmp_path / "run.lock").join(job="job-17")  # same job: let in
        with pytest.raises(RunInUseError, match=f"pid {proc.pid}"):
            RunLock(tmp_path / "run.lock").join(job="job-18")
    finally:
        proc.kill()
        proc.wait(timeout=60)
    # an unshared directory has no record for the other hosts: process 0's word stands
    RunLock(tmp_path / "elsewhere.lock").join(job="job-17")


def test_lock_is_not_inherited_by_child_processes(tmp_path):
    # A child (e.g. the W&B service) outliving a killed run must not keep the directory held.
    child = ("import sys, time; print('up', flush=True); time.sleep(60)")
    holder = ("import subprocess, sys, time\n"
              "from llm_jax.runs import RunLock\n"
              "RunLock(sys.argv[1]).acquire()\n"
              "c = subprocess.Popen([sys.executable, '-c', sys.argv[2]], stdout=sys.stdout)\n"
              "print(c.pid, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", holder, str(tmp_path / "run.lock"), child],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines = {proc.stdout.readline().strip() for _ in range(2)}
    child_pid = int(next(x for x in lines if x != "up"))
    try:
        proc.kill()
        proc.wait(timeout=60)
        RunLock(tmp_path / "run.lock").acquire().release()
    finally:
        os.kill(child_pid, 9)
