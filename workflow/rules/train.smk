# Offline training: one run per (env, quality, algorithm, training seed). The CLI resumes from
# ckpt.pt when a previous attempt was killed; ckpt.pt is deliberately not an output, so Snakemake
# keeps it when it cleans up after a failed or killed job.
import re


wildcard_constraints:
    algo="|".join(re.escape(a) for a in config["algorithms"]),


def train_job(w) -> dict:
    return mbconfig.train_job(config, w.env, w.quality, w.algo, int(w.seed))


def train_inputs(w) -> dict:
    job = train_job(w)
    inputs = {"dataset": job["dataset"], "behavior": job["behavior"]}
    if job["raw_dataset"]:   # ground-truth ablations only
        inputs["raw"] = job["raw_dataset"]
    return inputs


RUN_JOB = layout.run_job("{env}", "{quality}", "{algo}", "{seed}")


def run_file(name: str) -> str:
    """A file of the run folder, as a wildcard pattern."""
    return layout.run_file(RESULTS, "{env}", "{quality}", "{algo}", "{seed}", name)


rule train:
    input:
        unpack(train_inputs),
    output:
        final=run_file(layout.FINAL),
        metrics=run_file(layout.METRICS),
        config=run_file(layout.RUN_CONFIG),
    params:
        job=lambda w: job_json(train_job(w)),
        out=lambda w, output: os.path.dirname(output.final),
    conda:
        "../../envs/sim.yaml"
    log:
        layout.log(RESULTS, "train", RUN_JOB),
    benchmark:
        layout.benchmark(RESULTS, "train", RUN_JOB)
    threads: 1
    resources:
        # minutes; a retry after SLURM killed the job (time limit, preemption) asks for more and resumes
        runtime=lambda w, attempt: {"smoke": 5, "quick": 30, "paper": 240}[config["tier"]] * attempt,
        mem_mb=lambda w: {"smoke": 1500, "quick": 3000, "paper": 12000}[config["tier"]],
        cpus_per_task=1,
        # GPUs per run on a cluster (CUDA is used when present); override with
        # `--set-resources train:gpu=0` on a cluster without GPUs
        gpu=lambda w: {"smoke": 0, "quick": 0, "paper": 1}[config["tier"]],
    shell:
        "python -m maccabench train --env {wildcards.env} --quality {wildcards.quality} "
        "--algo {wildcards.algo} --seed {wildcards.seed} --job {params.job:q} --out {params.out} "
        "--threads {threads} --no-progress > {log} 2>&1"



# Reward recovery of a MACCA run: the correlation of its learned per-agent rewards with the hidden
# individual rewards. A separate step after training, so that training itself reads team files only.
localrules: reward_recovery


rule reward_recovery:
    input:
        final=run_file(layout.FINAL),
        # the raw file the run's team dataset was masked from
        raw=lambda w: layout.dataset(RESULTS, "raw", w.env, w.quality, train_job(w)["dataset_seed"]),
    output:
        run_file(layout.RECOVERY),
    params:
        run=lambda w, input: os.path.dirname(input.final),
    conda:
        "../../envs/sim.yaml"
    log:
        layout.log(RESULTS, "recovery", RUN_JOB),
    benchmark:
        layout.benchmark(RESULTS, "recovery", RUN_JOB)
    shell:
        "python -m maccabench recovery --run {params.run} --raw {input.raw} --out {output} > {log} 2>&1"
