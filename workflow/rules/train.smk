# Offline training: one run per (env, quality, algorithm, training seed). The CLI resumes from
# ckpt.pt when a previous attempt was killed; ckpt.pt is deliberately not an output, so Snakemake
# keeps it when it cleans up after a failed or killed job.
import re


wildcard_constraints:
    algo="|".join(re.escape(a) for a in config["algorithms"]),


RUN_JOB = layout.run_job("{env}", "{quality}", "{algo}", "{seed}")


rule train:
    input:
        unpack(train_inputs),
    output:
        final=run_file(layout.FINAL),
        metrics=run_file(layout.METRICS),
        config=run_file(layout.RUN_CONFIG),
    params:
        job=lambda w: train_job(w).to_json(),
        out=lambda w, output: os.path.dirname(output.final),
    conda:
        "../../envs/sim.yaml"
    log:
        layout.log(RESULTS, "train", RUN_JOB),
    benchmark:
        layout.benchmark(RESULTS, "train", RUN_JOB)
    threads: 1
    resources:
        **tier_resources("train"),  # runtime (x attempt), mem_mb, gpu: tiers.<tier>.resources in the config
        cpus_per_task=1,
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
        raw=lambda w: layout.dataset(RESULTS, "raw", w.env, w.quality, train_job(w).dataset_seed),
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
