"""Command line: `python -m maccabench <command>`. Every Snakemake rule calls one of these, and
each works without Snakemake: give `--config/--tier` instead of the `--job` JSON the rules pass."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from . import config as C
from . import layout
from .errors import ArgumentError, run_command


# ---- arguments checked before any data is read or model built --------------------------------

def _whole_number(text: str, minimum: int, fix: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number. Fix: {fix}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} is less than {minimum}. Fix: {fix}")
    return value


def seed_arg(text: str) -> int:
    """argparse type of a seed: a whole number >= 0 (numpy's seeding rejects negative ones)."""
    return _whole_number(text, 0, "give a seed >= 0 (0, 1, 2, ...)")


def positive_arg(text: str) -> int:
    """argparse type of a count (threads, cores): a whole number >= 1."""
    return _whole_number(text, 1, "give 1 or more")


def check_writable(path, argument: str, *, folder: bool) -> None:
    """An output path that can be written (`folder`: a folder, else a file), or ArgumentError; run
    first, so that a bad `--out` is not found after the data is loaded and the models are built."""
    p = Path(path).absolute()
    if folder and p.exists() and not p.is_dir():
        raise ArgumentError(argument, f"{path} is a file, not a folder", "pass a folder path (it is created if missing)")
    if not folder and p.is_dir():
        raise ArgumentError(argument, f"{path} is a folder, not a file", "pass the path of the file to write")
    existing = p if folder else p.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ArgumentError(argument, f"{path} lies under {existing}, which is a file",
                            "pass a path under a folder (or move that file away)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ArgumentError(argument, f"{path} cannot be written: {existing} is not writable",
                            "pass a path in a folder you can write to, or make that folder writable")


def check_exists(path, argument: str, fix: str, *, folder: bool = False) -> None:
    """An input that must exist (a folder if `folder`), or ArgumentError with `fix`."""
    p = Path(path)
    if not (p.is_dir() if folder else p.is_file()):
        what = "folder" if folder else "file"
        problem = f"{path} is not a {what}" if p.exists() else f"{path} does not exist"
        raise ArgumentError(argument, problem, fix)


def job_json(text: str, argument: str = "--job") -> dict:
    """The job object a rule passes as JSON, or ArgumentError."""
    try:
        job = json.loads(text)
    except json.JSONDecodeError as e:
        raise ArgumentError(argument, f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})",
                            "pass the job as one JSON object, quoted for the shell (or leave --job out "
                            "and give --config/--tier)") from None
    if not isinstance(job, dict):
        raise ArgumentError(argument, f"is a JSON {type(job).__name__}, not an object",
                            "pass the job object a Snakemake rule passes (or leave --job out and give --config/--tier)")
    return job


def _job(args, make):
    """The job dict of a stage (`args.cmd`): the JSON a rule passes, checked for the keys the stage
    reads, or built from the config file and tier."""
    if args.job:
        from .jobs import check_stage_job
        job = job_json(args.job)
        if "seed" in job and (not isinstance(job["seed"], int) or isinstance(job["seed"], bool) or job["seed"] < 0):
            raise ArgumentError("--job", f"has seed {job['seed']!r}", "give a seed that is a whole number >= 0")
        return check_stage_job(job, args.cmd)
    cfg = C.load(args.config, {"tier": args.tier} if args.tier else None)
    return make(cfg)


def cmd_check_config(args):
    cfg = C.load(args.config, {"tier": args.tier} if args.tier else None)
    t = C.tier(cfg)
    print(f"{args.config}: valid. tier={cfg['tier']} envs={t['envs']} qualities={t['qualities']} "
          f"dataset_seeds={t['dataset_seeds']} -> {C.results_dir(cfg)}")


def cmd_suites(args):
    from .registry import SUITES
    for name, suite in SUITES.items():
        print(f"{name}: {', '.join(sorted(suite.describe().tasks))}")


def cmd_behavior(args):
    from .behavior import train
    check_writable(args.out, "--out", folder=True)
    job = _job(args, lambda cfg: C.behavior_job(cfg, args.env, args.seed))
    summary = train(job, args.out, progress=not args.no_progress, threads=args.threads)
    print(json.dumps({k: v for k, v in summary.items() if k != "versions"}, indent=1))


def cmd_collect(args):
    from .collect import collect
    from .io import write_json
    check_writable(args.out, "--out", folder=False)
    job = _job(args, lambda cfg: C.collect_job(cfg, args.env, args.quality, args.seed))
    fix = "pass a finished behaviour folder, results/<tier>/behavior/<env>/seed<k> (snakemake behavior_policies makes them)"
    check_exists(args.behavior, "--behavior", fix, folder=True)
    needed = ["summary", "replay" if job.get("quality") == "medium-replay" else "policies"]
    for key in needed:
        check_exists(Path(args.behavior) / layout.BEHAVIOR_FILES[key], "--behavior", fix)
    stats = collect(job, args.behavior, args.out)
    write_json(Path(args.out).with_suffix(".stats.json"), stats)
    print(json.dumps({k: v for k, v in stats.items() if k != "env_config"}, indent=1))


def cmd_mask(args):
    from .data import mask
    check_writable(args.out, "--out", folder=False)
    ds = mask(args.raw, args.out)
    print(f"{args.out}: {len(ds)} transitions, team rewards only ({', '.join(sorted(ds.arrays))})")


def cmd_inspect(args):
    from . import data
    for p in args.files:
        ds = data.read(p)
        r = ds.attrs.get("behavior_return", {})
        print(f"{p}: kind={ds.kind} env={ds.spec.env} quality={ds.attrs.get('quality')} "
              f"transitions={len(ds)} return={r.get('mean', float('nan')):.2f}+-{r.get('std', float('nan')):.2f} "
              f"S_random={ds.attrs.get('S_random'):.2f} S_expert={ds.attrs.get('S_expert'):.2f} checksum=ok")


def cmd_train(args):
    from .jobs import TrainJob
    from .train import train
    cfg = None
    if args.job:
        job = TrainJob.from_json(args.job)   # the one place a rule's job is parsed and checked
    else:
        cfg = C.load(args.config, {"tier": args.tier} if args.tier else None)
        job = C.train_job(cfg, args.env, args.quality, args.algo, args.seed)
    out = args.out or C.run_dir(cfg or C.load(args.config, {"tier": job.tier}), job.env["name"],
                                job.quality, job.algo, job.seed)
    check_writable(out, "--out", folder=True)
    # the frozen opponents' policies.pt is read only after the models are built (datasets are read first)
    check_exists(job.behavior, "--job" if args.job else "--config",
                 "make the behaviour policies first (snakemake behavior_policies), "
                 "or give the job the policies.pt of the dataset's behaviour folder")
    final = train(job, out, progress=not args.no_progress, threads=args.threads)
    print(json.dumps({k: v for k, v in final.items() if k != "versions"}, indent=1))


def cmd_recovery(args):
    from .causal import recovery_of_run
    from .io import write_json
    from .maskscore import mask_recovery_of_run
    from .runfolder import recovery_record
    check_writable(args.out, "--out", folder=False)
    fix = "pass the run folder of a finished MACCA run, results/<tier>/runs/<env>/<quality>/<algo>/seed<s>"
    check_exists(args.run, "--run", fix, folder=True)
    for name in (layout.RUN_CONFIG, layout.CHECKPOINT):
        check_exists(Path(args.run) / name, "--run", fix)
    result = recovery_record(recovery_of_run(args.run, args.raw), mask_recovery_of_run(args.run))
    write_json(args.out, result)
    print(json.dumps(result, indent=1))


def cmd_datasets_summary(args):
    from .summary import datasets_summary
    check_exists(args.results, "results", "pass a tier's results folder, e.g. results/quick", folder=True)
    print(datasets_summary(args.results))


def cmd_import_cfcql(args):
    from .cfcql import import_file
    cfg = C.load(args.config, {"tier": args.tier} if args.tier else None)
    entry = C.env_entry(cfg, args.env)
    out = args.out or layout.dataset(C.results_dir(cfg), "team", args.env, args.quality, args.seed)
    check_writable(out, "--out", folder=False)
    ds = import_file(args.file, out, entry, args.quality, args.seed)
    r = ds.attrs["behavior_return"]
    print(f"{out}: {len(ds)} transitions, {r['episodes']} episodes, return {r['mean']:.3f}+-{r['std']:.3f} "
          f"(team rewards only; from {args.file})")


def main(argv=None):
    p = argparse.ArgumentParser(prog="maccabench", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def with_job(sp):
        sp.add_argument("--job", help="job JSON (what the Snakemake rules pass)")
        sp.add_argument("--config", default="config/config.yaml")
        sp.add_argument("--tier", help="a key of the config's `tiers` (default: its `tier`)")
        return sp

    sp = sub.add_parser("check-config", help="validate the config and print what a tier runs")
    sp.add_argument("--config", default="config/config.yaml")
    sp.add_argument("--tier", help="a key of the config's `tiers` (default: its `tier`)")
    sp.set_defaults(fn=cmd_check_config)
    sub.add_parser("suites", help="list environment suites and their tasks").set_defaults(fn=cmd_suites)

    sp = with_job(sub.add_parser("behavior", help="train the behaviour policies of one env (MATD3 or IPPO: behavior.learner)"))
    sp.add_argument("--env", required=True)
    sp.add_argument("--seed", type=seed_arg, default=0)
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--threads", type=positive_arg, help="torch CPU threads (default: torch's choice)")
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(fn=cmd_behavior)

    sp = with_job(sub.add_parser("collect", help="collect one raw dataset from behaviour policies"))
    sp.add_argument("--env", required=True)
    sp.add_argument("--quality", required=True, choices=list(C.QUALITIES))
    sp.add_argument("--seed", type=seed_arg, default=0)
    sp.add_argument("--behavior", required=True, help="behaviour folder (behavior/{env}/seed{k})")
    sp.add_argument("--out", required=True, help="raw .h5 file to write")
    sp.set_defaults(fn=cmd_collect)

    sp = sub.add_parser("mask", help="raw dataset -> team-reward dataset (individual rewards removed)")
    sp.add_argument("--raw", required=True)
    sp.add_argument("--out", required=True)
    sp.set_defaults(fn=cmd_mask)

    sp = sub.add_parser("inspect", help="verify datasets (checksum, spec) and print their statistics")
    sp.add_argument("files", nargs="+")
    sp.set_defaults(fn=cmd_inspect)

    sp = with_job(sub.add_parser("train", help="train one offline algorithm on one dataset (resumes from ckpt.pt)"))
    sp.add_argument("--env", required=True)
    sp.add_argument("--quality", required=True, choices=list(C.QUALITIES))
    sp.add_argument("--algo", required=True, help="a key of `algorithms` in the config")
    sp.add_argument("--seed", type=seed_arg, default=0, help="training seed")
    sp.add_argument("--out", help="run folder (default: results/<tier>/runs/<env>/<quality>/<algo>/seed<seed>)")
    sp.add_argument("--threads", type=positive_arg, help="torch CPU threads (default: torch's choice)")
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(fn=cmd_train)

    sp = sub.add_parser("recovery", help="reward recovery of a finished MACCA run against the hidden individual rewards")
    sp.add_argument("--run", required=True, help="run folder (runs/{env}/{quality}/{algo}/seed{s})")
    sp.add_argument("--raw", required=True, help="the raw dataset its team file was masked from")
    sp.add_argument("--out", required=True, help="reward_recovery.json to write")
    sp.set_defaults(fn=cmd_recovery)

    sp = sub.add_parser("datasets-summary", help="table of behaviour/collection figures of a results folder")
    sp.add_argument("results", help="e.g. results/quick")
    sp.set_defaults(fn=cmd_datasets_summary)

    sp = sub.add_parser("import-cfcql", help="a SMAC dataset in CFCQL's HDF5 layout -> our team dataset")
    sp.add_argument("file", help="the CFCQL .h5 file (e.g. 2s3z_expert.h5)")
    sp.add_argument("--env", required=True, help="the env entry of its map, e.g. smac-2s3z")
    sp.add_argument("--quality", required=True, choices=["random", "medium", "medium-replay", "expert"])
    sp.add_argument("--seed", type=seed_arg, default=0, help="the dataset seed it stands for (default 0)")
    sp.add_argument("--out", help="default: the tier's datasets/team/<env>/<quality>/seed<k>.h5")
    sp.add_argument("--config", default="config/config.yaml")
    sp.add_argument("--tier", help="a key of the config's `tiers` (default: its `tier`)")
    sp.set_defaults(fn=cmd_import_cfcql)

    args = p.parse_args(argv)
    run_command(args.fn, args)
