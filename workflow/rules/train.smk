# Offline training: one run per (env, quality, algorithm, training seed). The CLI resumes from
# ckpt.pt when a previous attempt was killed; ckpt.pt is deliberately not an output, so Snakemake
# keeps it when it cleans up after a failed or killed job.
import re


wildcard_constraints:
    algo="|".join(re.escape(a) for a in config["algorithms"]),


def train_job(w):
    return mbconfig.train_job(config, w.env, w.quality, w.algo, int(w.seed))


def train_inputs(w) -> dict:
    job = train_job(w)
    inputs = {"dataset": job.dataset, "behavior": job.behavior}
    if job.raw_dataset:   # ground-truth ablations only
        inputs["raw"] = job.raw_dataset
    return inputs


RUN = f"{RESULTS}/runs/{{env}}/{{quality}}/{{algo}}/seed{{seed}}"


rule train:
    input:
        unpack(train_inputs),
    output:
        final=f"{RUN}/final.json",
        metrics=f"{RUN}/metrics.csv",
        config=f"{RUN}/config.yaml",
    params:
        job=lambda w: train_job(w).to_json(),
        out=lambda w, output: os.path.dirname(output.final),
    conda:
        "../../envs/sim.yaml"
    log:
        f"{RESULTS}/logs/train/{{env}}/{{quality}}/{{algo}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{env}}/{{quality}}/{{algo}}/seed{{seed}}.tsv"
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
        final=f"{RUN}/final.json",
        raw=lambda w: train_job(w).dataset.replace("/datasets/team/", "/datasets/raw/"),
    output:
        f"{RUN}/reward_recovery.json",
    params:
        run=lambda w, input: os.path.dirname(input.final),
    conda:
        "../../envs/sim.yaml"
    log:
        f"{RESULTS}/logs/recovery/{{env}}/{{quality}}/{{algo}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/recovery/{{env}}/{{quality}}/{{algo}}/seed{{seed}}.tsv"
    shell:
        "python -m maccabench recovery --run {params.run} --raw {input.raw} --out {output} > {log} 2>&1"
