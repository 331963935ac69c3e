"""A curation config as datatrove stages, and those stages as local, SLURM or Ray executors.

    plan = plan_curation(config, run_dir)      # stages, folders; nothing runs
    print(plan.describe("slurm"))              # the dry run
    executors = plan.executors("local", config)
    executors[-1].run()                        # runs every stage in order (`depends`)

Stages, FineWeb's order (MinHash in datatrove is four stages: signatures, buckets, clusters,
filter; exact dedup three: signatures, duplicates, filter):

1. `filter`: read → URL block list → HTML extraction → language → Gopher repetition →
   Gopher quality → C4 → FineWeb → `work/filtered/` (Parquet)
2. `exact_signatures`, 3. `exact_duplicates`
4. `minhash_signatures` (of the documents exact dedup keeps), 5. `minhash_buckets`,
   6. `minhash_clusters`
7. `final`: exact dedup → MinHash dedup → PII scrubbing → `data/` (sharded Parquet, `text`)

Every step of stages 1 and 7 is `Counted`; each filter's removed documents go to
`removed/<step>/` (datatrove's exclusion writers), which the report samples.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ml_collections

from llm_jax.errors import ConfigError, DataError

FORMATS = ("warc", "jsonl", "parquet", "text")
EXTRACTORS = ("trafilatura", "resiliparse")
BACKENDS = ("local", "slurm", "ray")
WORD_SPLITTERS = ("fast", "spacy")  # words.py: the regex splitter, or datatrove's spaCy
START_METHODS = ("fork", "forkserver", "spawn")  # the local executor's worker processes


@dataclasses.dataclass
class Stage:
    name: str
    pipeline: list
    tasks: int
    counted: tuple[str, ...] = ()  # labels of its counted steps, in data-flow order
    reads: Path | None = None  # the folder of its main input, when an earlier stage writes it

    def describe(self) -> str:
        steps = " → ".join(_step_name(s) for s in self.pipeline)
        return f"{self.name} ({self.tasks} task{'s' * (self.tasks != 1)}): {steps}"


def _step_name(step) -> str:
    """A step as the plan shows it: its label, or what it reads / writes and where."""
    if getattr(step, "label", None):
        return step.label
    kind = type(step).__name__
    for attr, verb in (("data_folder", "read"), ("output_folder", "write")):
        folder = getattr(step, attr, None)
        if folder is not None and kind.endswith(("Reader", "Writer")):
            return f"{verb} {kind.removesuffix('Reader').removesuffix('Writer')} {folder.path}"
    return kind


@dataclasses.dataclass
class CurationPlan:
    run_dir: Path
    output_dir: Path
    inputs: tuple[str, ...]
    stages: list[Stage]

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def removed_dir(self) -> Path:
        return self.run_dir / "removed"

    def counted_steps(self) -> list[tuple[str, str]]:
        """(stage, label) of every counted step, in the order documents flow."""
        return [(s.name, label) for s in self.stages for label in s.counted]

    def executors(self, backend: str, config: ml_collections.ConfigDict) -> list:
        """One datatrove executor per stage, each depending on the one before."""
        if backend not in BACKENDS:
            raise ConfigError(f"--backend {backend!r}: one of {', '.join(BACKENDS)}")
        made = []
        for stage in self.stages:
            made.append(_executor(backend, stage, self.logs_dir / stage.name, config,
                                  made[-1] if made else None, self.run_dir.name))
        return made

    def describe(self, backend: str = "local", config=None) -> str:
        lines = [f"curation run in {self.run_dir}",
                 f"inputs: {', '.join(self.inputs)}",
                 f"output: {self.output_dir} (sharded Parquet, column text)",
                 f"executor: {backend}"]
        lines += [f"  {i}. {s.describe()}" for i, s in enumerate(self.stages, 1)]
        if backend == "slurm" and config is not None:
            lines.append("SLURM jobs (not submitted; each waits for the one before):")
            for executor in self.executors("slurm", config):
                lines.append(f"--- job {executor.job_name}: {executor.tasks} array tasks ---")
                lines.append(slurm_script(executor))
        elif backend == "ray" and config is not None:
            lines.append("Ray tasks (not launched; ray.init() joins the running cluster):")
            for executor, stage in zip(self.executors("ray", config), self.stages):
                lines.append(f"  {stage.name}: {executor.tasks} tasks × "
                             f"{executor.cpus_per_task} CPU, {executor.mem_per_cpu_gb} GB/CPU, "
                             f"logs {executor.logging_dir.path}")
        return "\n".join(lines)


def slurm_script(executor) -> str:
    """The sbatch script datatrove would submit for `executor` (its launch_job, unsent)."""
    pickled = executor.logging_dir.resolve_paths("executor.pik")
    tasks = min(executor.tasks, executor.max_array_size)
    return executor.get_launch_file_contents(executor.get_sbatch_args(tasks),
                                             f"srun -l -n 1 launch_pickled_pipeline {pickled}")


def _executor(backend: str, stage: Stage, logs: Path, config, depends, name: str):
    common = dict(pipeline=stage.pipeline, tasks=stage.tasks, logging_dir=str(logs),
                  depends=depends)
    if backend == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(workers=min(config.executor.workers, stage.tasks),
                                     start_method=config.executor.start_method, **common)
    if backend == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        slurm = config.executor.slurm
        extra = {}
        for item in slurm.sbatch_args:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"executor.slurm.sbatch_args: {item!r} is not key=value")
            extra[key] = value
        return SlurmPipelineExecutor(
            job_name=f"{name}-{stage.name}", partition=slurm.partition, time=slurm.time,
            cpus_per_task=slurm.cpus_per_task, mem_per_cpu_gb=slurm.mem_per_cpu_gb,
            venv_path=slurm.venv_path or None, sbatch_args=extra,
            slurm_logs_folder=str(logs / "slurm_logs"), **common)
    # RayPipelineExecutor imports ray only when it runs, so a dry run needs no ray.
    from datatrove.executor.ray import RayPipelineExecutor

    return RayPipelineExecutor(cpus_per_task=config.executor.ray.cpus_per_task,
                               mem_per_cpu_gb=config.executor.ray.mem_per_cpu_gb, **common)


def check_config(config: ml_collections.ConfigDict) -> None:
    """Mistakes datatrove would only find mid-run, as one line naming the key."""
    if config.input.format not in FORMATS:
        raise ConfigError(f"input.format={config.input.format!r}: one of {', '.join(FORMATS)}")
    if config.extract.extractor not in EXTRACTORS:
        raise ConfigError(f"extract.extractor={config.extract.extractor!r}: one of "
                          f"{', '.join(EXTRACTORS)}")
    if config.executor.start_method not in START_METHODS:
        raise ConfigError(f"executor.start_method={config.executor.start_method!r}: one of "
                          f"{', '.join(START_METHODS)}")
    if config.word_splitter not in WORD_SPLITTERS:
        raise ConfigError(f"word_splitter={config.word_splitter!r}: one of "
                          f"{', '.join(WORD_SPLITTERS)}")
    if config.executor.tasks < 1 or config.executor.workers < 1:
        raise ConfigError("executor.tasks and executor.workers must be at least 1")
    # absent from the config of a run made before the key existed (`llm-jax data report`)
    if (below := config.executor.get("in_process_below_mb", 0.0)) < 0:
        raise ConfigError(f"executor.in_process_below_mb={below}: 0 (never) or more")
    if not 0.0 <= config.language.threshold <= 1.0:
        raise ConfigError(f"language.threshold={config.language.threshold}: a probability")
    if config.language.max_chars < 0:
        raise ConfigError(f"language.max_chars={config.language.max_chars}: 0 (all) or more")


def input_locations(paths: tuple[str, ...], glob: str,
                    must_exist: bool = True) -> list[tuple[str, str | None]]:
    """(folder, glob) per input path; a missing path is a DataError naming it (a dry run
    plans a folder that is not built yet)."""
    found = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            found.append((str(path.parent.resolve()), path.name))
        elif path.is_dir() or not must_exist:
            found.append((str(path.resolve()), glob or None))
        else:
            raise DataError(f"input.paths: {raw}: no such file or folder")
    if not found:
        raise ConfigError("input.paths is empty: name the files or folders to curate")
    return found


def plan_curation(config: ml_collections.ConfigDict, run_dir: Path,
                  inputs: tuple[str, ...] | None = None, must_exist: bool = True) -> CurationPlan:
    """The stages of `config` (inputs default to `config.input.paths`)."""
    check_config(config)
    try:
        from llm_jax.curate import stages
    except ImportError as e:  # datatrove or one of its step's packages is missing
        raise ConfigError(f"data curation needs its extra: pip install 'llm-jax[curate]' "
                          f"({e})") from None
    run_dir = Path(run_dir)
    inputs = tuple(inputs if inputs is not None else config.input.paths)
    locations = input_locations(inputs, config.input.glob, must_exist)
    output_dir = Path(config.output.dir) if config.output.dir else run_dir / "data"
    try:
        built = stages.build_stages(config, locations, run_dir, output_dir)
    except ImportError as e:
        raise ConfigError(f"data curation needs its extra: pip install 'llm-jax[curate]' "
                          f"({e})") from None
    return CurationPlan(run_dir=run_dir, output_dir=output_dir, inputs=inputs, stages=built)
