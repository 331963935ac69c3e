"""Report cards from a run's own files: key numbers, plots, samples; a pipeline's card; the
`llm-jax report` command."""

import json

import pytest

from llm_jax.cli import main
from llm_jax.errors import RunError
from llm_jax.tracking.metrics_log import MetricsLog, SamplesLog
from llm_jax.tracking.report import (
    better,
    environment,
    key_metrics,
    write_pipeline_report,
    write_report,
    write_run_report,
)

ENV = {"cpu": "Test CPU (2 cores usable)", "jax": "0.0", "devices": "8 × cpu",
       "git commit": "abc"}


def _run(path, stage, rows, samples=(), done=None, config=None):
    path.mkdir(parents=True)
    config = {"stage": stage, "run": {"name": ""}, "train": {"steps": rows[-1]["step"]},
              "optim": {"lr": 1e-3}, "data": {"batch_size": 8, "seq_len": 64},
              "model": {"n_layers": 2, "d_model": 64, "n_heads": 4, "vocab_size": 384,
                        "norm": "layernorm", "pos": "learned", "mlp": "gelu"},
              "parent": {"kind": "random"}} | (config or {})
    (path / "config.json").write_text(json.dumps(config))
    (path / "summary.json").write_text(json.dumps({"n_params": 130_000}))
    log = MetricsLog(path)
    for row in rows:
        log.log(row["step"], {k: v for k, v in row.items() if k != "step"})
    if samples:
        SamplesLog(path).log(samples[0]["step"], [
            {k: v for k, v in s.items() if k != "step"} for s in samples])
    if done is not None:
        (path / "done.json").write_text(json.dumps(done))
    return path


def _pretrain(path, **kw):
    rows = [{"step": 1, "loss": 6.0, "lr": 1e-3}, {"step": 2, "loss": 5.0},
            {"step": 2, "eval_loss": 5.5, "eval_bpb": 2.5, "eval_ppl": 244.0},
            {"step": 3, "loss": 4.0}, {"step": 4, "loss": 4.5},
            {"step": 4, "eval_loss": 5.25, "eval_bpb": 2.4, "eval_ppl": 190.0}]
    samples = [{"step": 4, "prompt": "In the beginning", "completion": "was ```code``` here"}]
    return _run(path, "pretrain", rows, samples, **kw)


def _rl(path, **kw):
    rows = [{"step": 0, "eval/accuracy": 0.1, "eval/accuracy/level_1": 0.2,
             "eval/response_length": 30.0},
            {"step": 1, "reward": 0.2, "reward/proxy": 0.2, "reward/gold": 0.1,
             "kl_sequence": 0.01, "loss": 0.0, "completions/mean_length": 30.0},
            {"step": 2, "reward": 0.5, "reward/proxy": 0.5, "reward/gold": 0.3,
             "kl_sequence": 0.05, "loss": 0.0, "completions/mean_length": 24.0},
            {"step": 2, "eval/accuracy": 0.3, "eval/accuracy/level_1": 0.5,
             "eval/response_length": 22.0}]
    samples = [{"step": 2, "prompt": "What is 2 + 3?", "completion": "#### 5", "reward": "1.00"}]
    return _run(path, "rl", rows, samples, config={"rl": {"algorithm": "policy_gradient",
                                                           "group_size": 8,
                                                           "task": {"levels": [1, 2]}}}, **kw)


def test_run_report_key_numbers_plots_and_samples(tmp_path):
    run = _pretrain(tmp_path / "pre")
    text = write_run_report(run).read_text()
    for section in ("## Environment", "## Configuration", "## Key numbers", "## Plots",
                    "## Samples"):
        assert section in text
    # first / last / best with steps; eval_ppl is left out (it repeats eval_loss)
    assert "| `eval_loss` | 5.5 @2 | 5.25 @4 | 5.25 @4 (min) |" in text
    assert "| `loss` | 6 @1 | 4.5 @4 | 4 @3 (min) |" in text
    assert "eval_ppl" not in text and "`lr`" not in text
    assert "0.13M params; 2 layers, 64 d_model, 4 heads, 384 vocab" in text
    assert "| `data.batch_size` | 8 |" in text
    assert (run / "plots" / "loss.png").stat().st_size > 1000
    assert "![loss](plots/loss.png)" in text and "![bpb](plots/bpb.png)" in text
    # a completion holding ``` gets a longer fence
    assert "````text\nwas ```code``` here\n````" in text
    assert "of the machine that wrote this report" in text  # no done.json to read it from


def test_rl_report_before_after_and_proxy_vs_gold(tmp_path):
    run = _rl(tmp_path / "rl", done={"wall_s": 75.0, "environment": ENV})
    text = write_run_report(run).read_text()
    assert "| `eval/accuracy` | 0.1 @0 | 0.3 @2 | 0.3 @2 (max) |" in text
    assert "| `eval/accuracy/level_1` | 0.2 @0 | 0.5 @2 | 0.5 @2 (max) |" in text
    assert "| `completions/mean_length` | 30 @1 | 24 @2 | - |" in text  # no "best" length
    assert "finished in 1 min 15 s" in text and "Test CPU" in text
    assert "| `rl.group_size` | 8 |" in text and "data.batch_size" not in text
    assert "| `reward/gold` | 0.1 @1 | 0.3 @2 | 0.3 @2 (max) |" in text
    assert "| `kl_sequence` | 0.01 @1 | 0.05 @2 | - |" in text
    for plot in ("accuracy", "length", "reward", "proxy_gold", "proxy_gold_kl"):
        assert (run / "plots" / f"{plot}.png").is_file(), plot
    assert "prompt `What is 2 + 3?`, reward 1.00:" in text


def test_metric_selection_is_by_name():
    rows = [{"step": 1, "loss": 1.0, "grad_norm": 2.0, "time/rollout": 3.0, "rm/accuracy": 0.7,
             "chat/end_rate": 1.0, "eval_ppl": 9.0, "eval_loss": 2.0}]
    assert key_metrics(rows) == ["eval_loss", "loss", "chat/end_rate", "rm/accuracy"]
    assert (better("eval_loss"), better("chat/end_rate"), better("eval/pass@8"),
            better("completions/mean_length")) == ("min", "max", "max", None)


def _pipeline(root, stages):
    root.mkdir(parents=True)
    (root / "pipeline.json").write_text(json.dumps({
        "experiment": "experiments/speedrun_tiny.py", "overrides": ["--config.train.steps=4"],
        "stages": [{"index": i, "name": n, "trainer": t, "experiment": f"experiments/{n}.py",
                    "dir": f"{i:02d}-{n}"} for i, (n, t) in enumerate(stages, start=1)]}))


def test_pipeline_report_links_stages(tmp_path):
    root = tmp_path / "pipe"
    _pipeline(root, [("pretrain", "pretrain"), ("grpo", "rl"), ("rlhf", "rl")])
    _pretrain(root / "01-pretrain", done={"wall_s": 61.0, "environment": ENV})
    _rl(root / "02-grpo")  # logged, not finished
    text = write_pipeline_report(root).read_text()
    assert "| 1 | pretrain | pretrain | `pretrain.py` | done in 1 min 01 s | `eval_loss` 5.5 → " \
           "5.25, `eval_bpb` 2.5 → 2.4 | [report](01-pretrain/report.md) |" in text
    assert "| 2 | grpo | rl | `grpo.py` | in progress | `eval/accuracy` 0.1 → 0.3" in text
    assert "| 3 | rlhf | rl | `rlhf.py` | not run yet | - | - |" in text
    assert "Wall time of the finished stages: 1 min 01 s" in text and "Test CPU" in text
    assert "![loss](01-pretrain/plots/loss.png)" in text
    assert (root / "01-pretrain" / "report.md").is_file()
    assert (root / "02-grpo" / "report.md").is_file()


def test_report_command(tmp_path, capsys):
    run = _pretrain(tmp_path / "pre")
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"report card: {run / 'report.md'}"
    assert main(["report", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert "neither a run directory" in err and len(err.splitlines()) == 1
    with pytest.raises(RunError):
        write_report(tmp_path)


def test_environment_names_cpu_jax_devices_and_commit():
    env = environment()
    assert set(env) == {"cpu", "python", "jax", "devices", "git commit"}
    assert "cpu" in env["devices"]
