# Dataset collection (raw: individual rewards) and masking (team: team reward only).

# Masking only rewrites one file: it runs beside Snakemake, not as a cluster job. Collection
# replays policies for up to 1M steps per dataset (paper tier), so it is a cluster job.
localrules:
    mask,


def behavior_dir(w):
    return f"{RESULTS}/behavior/{w.env}/seed{w.seed}"


rule collect:
    input:
        summary=f"{RESULTS}/behavior/{{env}}/seed{{seed}}/summary.json",
        policies=f"{RESULTS}/behavior/{{env}}/seed{{seed}}/policies.pt",
        replay=f"{RESULTS}/behavior/{{env}}/seed{{seed}}/replay_medium.npz",
    output:
        raw=f"{RESULTS}/datasets/raw/{{env}}/{{quality}}/seed{{seed}}.h5",
        stats=f"{RESULTS}/datasets/raw/{{env}}/{{quality}}/seed{{seed}}.stats.json",
    params:
        job=lambda w: job_json(mbconfig.collect_job(config, w.env, w.quality, int(w.seed))),
        behavior=behavior_dir,
    conda:
        "../../envs/sim.yaml"
    log:
        f"{RESULTS}/logs/collect/{{env}}/{{quality}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/collect/{{env}}/{{quality}}/seed{{seed}}.tsv"
    resources:
        **tier_resources("collect"),  # runtime (x attempt), mem_mb: tiers.<tier>.resources in the config
    shell:
        "python -m maccabench collect --env {wildcards.env} --quality {wildcards.quality} "
        "--seed {wildcards.seed} --job {params.job:q} --behavior {params.behavior} "
        "--out {output.raw} > {log} 2>&1"


rule mask:
    input:
        raw=f"{RESULTS}/datasets/raw/{{env}}/{{quality}}/seed{{seed}}.h5",
    output:
        team=f"{RESULTS}/datasets/team/{{env}}/{{quality}}/seed{{seed}}.h5",
    conda:
        "../../envs/sim.yaml"
    log:
        f"{RESULTS}/logs/mask/{{env}}/{{quality}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mask/{{env}}/{{quality}}/seed{{seed}}.tsv"
    resources:
        **tier_resources("mask"),  # mem_mb: tiers.<tier>.resources in the config
    shell:
        "python -m maccabench mask --raw {input.raw} --out {output.team} > {log} 2>&1"


rule datasets:
    input:
        expand(
            f"{RESULTS}/datasets/team/{{env}}/{{quality}}/seed{{seed}}.h5",
            env=TIER["envs"],
            quality=TIER["qualities"],
            seed=TIER["dataset_seeds"],
        ),
