"""What SLURM costs per job: smoke-tier targets run locally and through `snakemake --profile
slurm`, then each SLURM job's time split up from SLURM's own records.

    sudo .ci/slurm.sh start                          # or any SLURM with accounting
    python benchmarks/slurm_overhead.py              # datasets + table9 (4 training runs)
    python benchmarks/slurm_overhead.py --targets all

Prints both wall times, and per SLURM job: queue wait (submit -> start), time in the job outside
the rule's command (SLURM job start -> end minus the command's own seconds from the rule's
`benchmark:` file; this is the job step's Snakemake start-up) and the mean added wall time.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake(targets: list[str], args: list[str], results: Path) -> float:
    """Wall seconds of one run; targets with a '/' are files under the tier's results folder."""
    targets = [str(results / "smoke" / t) if "/" in t else t for t in targets]
    cmd = [sys.executable, "-m", "snakemake", *targets, *args, "--config", "tier=smoke", f"results={results}/{{tier}}"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{(r.stdout + r.stderr)[-3000:]}")
    return wall


def sacct(since: str) -> list[dict]:
    fields = ["JobID", "Comment", "State", "Submit", "Start", "End", "WorkDir"]
    r = subprocess.run(["sacct", "-X", "-P", "-n", "-S", since, "-o", ",".join(fields)],
                       capture_output=True, text=True, check=True)
    rows = [dict(zip(fields, line.split("|"))) for line in r.stdout.splitlines()]
    return [row for row in rows if row["WorkDir"] == str(ROOT) and row["State"] == "COMPLETED"]


def command_seconds(results: Path, comment: str) -> float:
    """The rule's own command time from its benchmark file (rule_<rule>_wildcards_<v1>_<v2>...)."""
    rule, values = comment.removeprefix("rule_").split("_wildcards_")
    parts = values.split("_")
    rel = {"behavior": lambda env, seed: f"behavior/{env}/seed{seed}.tsv",
           "collect": lambda env, quality, seed: f"collect/{env}/{quality}/seed{seed}.tsv",
           "train": lambda env, quality, algo, seed: f"train/{env}/{quality}/{algo}/seed{seed}.tsv"}[rule]
    tsv = results / "smoke" / "benchmarks" / rel(*parts)
    return float(tsv.read_text().splitlines()[1].split("\t")[0])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", nargs="+", default=["datasets", "tables/table9.csv"],
                   help="rule names or files under results/smoke/ (default: datasets tables/table9.csv)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="slurm-overhead-") as tmp:
        tmp = Path(tmp)
        local_wall = snakemake(args.targets, ["--cores", "2"], tmp / "local")
        since = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
        slurm_wall = snakemake(args.targets, ["--profile", "slurm"], tmp / "slurm")
        jobs = sacct(since)
        ts = lambda s: datetime.fromisoformat(s).timestamp()
        wait = [ts(j["Start"]) - ts(j["Submit"]) for j in jobs]
        inside = [ts(j["End"]) - ts(j["Start"]) - command_seconds(tmp / "slurm", j["Comment"]) for j in jobs]
    n = len(jobs)
    print(f"targets {' '.join(args.targets)}, smoke tier, {n} SLURM jobs")
    print(f"local run (--cores 2):      {local_wall:7.1f} s")
    print(f"SLURM run (--profile slurm): {slurm_wall:7.1f} s")
    print(f"added wall time per SLURM job: {(slurm_wall - local_wall) / max(n, 1):5.1f} s")
    print(f"queue wait (submit -> start; includes waiting for a free CPU):  mean {statistics.mean(wait):5.1f} s, max {max(wait):5.1f} s")
    print(f"job start-up outside the rule (start -> end minus command): mean {statistics.mean(inside):5.1f} s, "
          f"max {max(inside):5.1f} s")


if __name__ == "__main__":
    main()
