"""Command line of the aggregate stage: `python -m maccabench.aggregate <command>`.

Snakemake rules pass the resolved table as `--job JSON`; by hand, give `--config/--tier/--name`
and the same table is resolved from the config file:

    python -m maccabench.aggregate status --tier quick
    python -m maccabench.aggregate timing --tier quick      # which stage dominates the tier's time
    python -m maccabench.aggregate table --tier quick --name table1 --out results/quick/tables
"""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from .. import config as C
from .. import layout
from ..cli import check_writable, job_json, positive_arg
from ..errors import ArgumentError, MaccabenchError, run_command
from . import spec


def _cfg(args) -> dict:
    cfg = C.load(args.config, {"tier": args.tier} if args.tier else None)
    if args.results:
        cfg["results"] = args.results
    return cfg


def _table(args) -> spec.Table:
    if args.job:
        return spec.Table.from_job(job_json(args.job))
    if not args.name:
        raise ArgumentError("--name", "is missing", f"give --name <table> (one of {', '.join(spec.table_names(_cfg(args)))}) "
                            "or the --job a Snakemake rule passes")
    return spec.resolve(_cfg(args), args.name)


def cmd_table(args):
    from .tables import build, write
    check_writable(args.out, "--out", folder=True)
    built = build(_table(args))
    paths = write(built, args.out)
    print(paths["md"].read_text())
    if built.partial:
        print(f"warning: {built.table.name} is PARTIAL ({len(built.missing)} runs missing)", file=sys.stderr)


def cmd_vs_paper(args):
    from .tables import load_paper_values, read_csv, side_by_side, write_side_by_side
    check_writable(args.out, "--out", folder=True)
    table = _table(args)
    csv = Path(args.csv or Path(args.out) / f"{table.name}.csv")
    if not csv.exists():
        raise ArgumentError("--csv", f"{csv} does not exist",
                            f"build the table first (`python -m maccabench.aggregate table --name {table.name} "
                            f"--out {args.out}`) or pass --csv <file>")
    built = side_by_side(table, read_csv(csv), load_paper_values(args.paper))
    paths = write_side_by_side(built, args.out)
    print(paths["md"].read_text())


def cmd_curves(args):
    from .figures import curves
    check_writable(args.out, "--out", folder=False)
    for p in curves(_table(args), args.out):
        print(p)


def cmd_recovery_scatter(args):
    from .figures import recovery_scatter
    check_writable(args.out, "--out", folder=False)
    for p in recovery_scatter(_table(args), args.out):
        print(p)


def cmd_masks(args):
    from .figures import masks_figure
    check_writable(args.out, "--out", folder=False)
    job = job_json(args.job) if args.job else spec.masks_job(_cfg(args))
    params = {n: p for n, p in inspect.signature(masks_figure).parameters.items() if n != "png"}
    fields = list(params)
    wrong = [k for k in job if k not in params] or \
        [k for k, p in params.items() if k not in job and p.default is inspect.Parameter.empty]
    if wrong:
        raise ArgumentError("--job", f"{'has the unknown key' if wrong[0] in job else 'lacks the key'} {wrong[0]!r}",
                            f"pass the job the masks rule passes (keys: {', '.join(fields)})")
    for p in masks_figure(png=args.out, **job):
        print(p)


def cmd_status(args):
    cfg = _cfg(args)
    for name in spec.table_names(cfg):
        try:
            t = spec.resolve(cfg, name)
        except MaccabenchError as e:
            print(f"{name}: cannot be built: {e}")
            continue
        if not t.active:
            print(f"{name}: no rows in tier {t.tier} ({t.inactive_reason})")
            continue
        keys = t.runs()
        done = [k for k in keys if k.file(t.results, layout.FINAL).exists()]
        print(f"{name}: {len(done)}/{len(keys)} runs finished ({t.kind}, {len(t.rows)} rows)")
        if args.verbose:
            for k in keys:
                if k not in done:
                    print(f"   missing {k}")


def cmd_timing(args):
    from .timing import job_times, stage_summary
    cfg = _cfg(args)
    results = C.results_dir(cfg)
    print(f"{results}: wall seconds of every benchmarked job, per stage (training and reward recovery: per algorithm); "
          f"min_wall_min = job-seconds / {args.cores} cores")
    print(stage_summary(job_times(results), args.cores).to_string())


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m maccabench.aggregate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, job=True):
        if job:
            sp.add_argument("--job", help="resolved job JSON (what the Snakemake rules pass)")
            sp.add_argument("--name", help="table name in the config's `tables:` section")
        sp.add_argument("--config", default="config/config.yaml")
        sp.add_argument("--tier", help="a key of the config's `tiers` (default: its `tier`)")
        sp.add_argument("--results", help="results folder (default: the config's `results`)")
        return sp

    sp = common(sub.add_parser("table", help="build one table: <out>/<name>.csv/.md/.tex/.html"))
    sp.add_argument("--out", required=True, help="output folder (results/<tier>/tables)")
    sp.set_defaults(fn=cmd_table)

    sp = common(sub.add_parser("vs-paper", help="side-by-side with the paper's values: <out>/<name>_vs_paper.*"))
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--csv", help="our table's CSV (default <out>/<name>.csv)")
    sp.add_argument("--paper", default="config/paper_values.yaml")
    sp.set_defaults(fn=cmd_vs_paper)

    sp = common(sub.add_parser("curves", help="learning curves of a table's runs (PNG + PDF)"))
    sp.add_argument("--out", required=True, help="PNG path; the PDF goes next to it")
    sp.set_defaults(fn=cmd_curves)

    sp = common(sub.add_parser("recovery-scatter", help="reward recovery vs score of a recovery table's runs"))
    sp.add_argument("--out", required=True, help="PNG path; the PDF goes next to it")
    sp.set_defaults(fn=cmd_recovery_scatter)

    sp = common(sub.add_parser("masks", help="Figure 4: mask probability heat-maps (tables.figures.masks)"), job=False)
    sp.add_argument("--job", help="job JSON (what the Snakemake rule passes)")
    sp.add_argument("--out", required=True, help="PNG path; the PDF goes next to it")
    sp.set_defaults(fn=cmd_masks)

    sp = common(sub.add_parser("status", help="which runs each table needs and how many are finished"), job=False)
    sp.add_argument("-v", "--verbose", action="store_true", help="list the missing runs")
    sp.set_defaults(fn=cmd_status)

    sp = common(sub.add_parser("timing", help="where the tier's time goes: benchmark files summed per stage"), job=False)
    sp.add_argument("--cores", type=positive_arg, default=2, help="cores the tier ran on")
    sp.set_defaults(fn=cmd_timing)

    args = p.parse_args(argv)
    run_command(args.fn, args)


if __name__ == "__main__":
    main()
