"""Start one training command on many hosts: locally (N processes), on a TPU VM pod, or SLURM.

    python launch/launch.py local --processes 2 -- llm-jax train experiments/pretrain_tiny.py
    python launch/launch.py tpu --tpu my-v5e-64 --zone us-west4-a --dry-run -- llm-jax train ...
    python launch/launch.py slurm --nodes 4 --gpus-per-node 8 --dry-run -- llm-jax train ...

Every process runs the same command; `llm_jax.sharding.mesh.maybe_initialize_distributed` joins
them into one JAX job (from COORDINATOR_ADDRESS / NUM_PROCESSES / PROCESS_ID set here for
`local`, from SLURM's variables under `slurm`, and automatically on TPU pods). `--dry-run`
prints what would run without running it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local(args, command: list[str]) -> int:
    """N processes on this machine, each with its share of the CPU devices (for testing)."""
    port = args.port or _free_port()
    procs = []
    for i in range(args.processes):
        env = dict(os.environ, COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                   NUM_PROCESSES=str(args.processes), PROCESS_ID=str(i))
        if args.cpu_devices_per_process:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_"
                                f"count={args.cpu_devices_per_process}").strip()
            env["JAX_PLATFORMS"] = "cpu"
        if args.dry_run:
            exports = " ".join(f"{k}={shlex.quote(env[k])}" for k in
                               ("COORDINATOR_ADDRESS", "NUM_PROCESSES", "PROCESS_ID"))
            print(f"{exports} {shlex.join(command)} &")
            continue
        procs.append(subprocess.Popen(command, env=env))
    codes = [p.wait() for p in procs]
    return max(codes, default=0)


def tpu(args, command: list[str]) -> int:
    """The same command on every worker of a TPU VM slice (JAX finds its peers itself)."""
    gcloud = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", args.tpu, f"--zone={args.zone}",
              "--worker=all", f"--command=cd {shlex.quote(args.remote_dir)} && "
              f"{shlex.join(command)}"]
    if args.project:
        gcloud.insert(5, f"--project={args.project}")
    print(shlex.join(gcloud))
    return 0 if args.dry_run else subprocess.call(gcloud)


SBATCH = """#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={gpus}
#SBATCH --time={time}
#SBATCH --requeue
#SBATCH --signal=TERM@120
# One task per node; each JAX process drives its node's GPUs. SIGTERM two minutes before the
# time limit lets the run checkpoint; --requeue then resumes it from the same run directory.
srun {command}
"""


def slurm(args, command: list[str]) -> int:
    script = SBATCH.format(name=args.name, nodes=args.nodes, gpus=args.gpus_per_node,
                           time=args.time, command=shlex.join(command))
    if args.dry_run:
        print(script)
        return 0
    return subprocess.run(["sbatch"], input=script, text=True).returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("usage: launch.py {local,tpu,slurm} [options] -- COMMAND ...", file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="where", required=True)
    p = sub.add_parser("local")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--cpu-devices-per-process", type=int, default=0)
    p.add_argument("--port", type=int, default=0)
    p = sub.add_parser("tpu")
    p.add_argument("--tpu", required=True)
    p.add_argument("--zone", required=True)
    p.add_argument("--project", default="")
    p.add_argument("--remote-dir", default="~/llm-jax")
    p = sub.add_parser("slurm")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=8)
    p.add_argument("--time", default="24:00:00")
    p.add_argument("--name", default="llm-jax")
    for p in sub.choices.values():
        p.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    return {"local": local, "tpu": tpu, "slurm": slurm}[args.where](args, command)


if __name__ == "__main__":
    sys.exit(main())
