# Dataset collection (raw: individual rewards) and masking (team: team reward only).

# Masking only rewrites one file: it runs beside Snakemake, not as a cluster job. Collection
# replays policies for up to 1M steps per dataset (paper tier), so it is a cluster job.
localrules:
    mask,


RAW = layout.dataset(RESULTS, "raw", "{env}", "{quality}", "{seed}")
TEAM = layout.dataset(RESULTS, "team", "{env}", "{quality}", "{seed}")
DATASET_JOB = layout.dataset_job("{env}", "{quality}", "{seed}")


rule collect:
    input:
        summary=BEHAVIOR["summary"],
        policies=BEHAVIOR["policies"],
        replay=BEHAVIOR["replay"],
    output:
        raw=RAW,
        stats=layout.stats_of(RAW),
    params:
        job=lambda w: job_json(mbconfig.collect_job(config, w.env, w.quality, int(w.seed))),
        behavior=lambda w: layout.behavior_dir(RESULTS, w.env, w.seed),
    conda:
        "../../envs/sim.yaml"
    log:
        layout.log(RESULTS, "collect", DATASET_JOB),
    benchmark:
        layout.benchmark(RESULTS, "collect", DATASET_JOB)
    resources:
        **tier_resources("collect"),  # runtime (x attempt), mem_mb: tiers.<tier>.resources in the config
    shell:
        "python -m maccabench collect --env {wildcards.env} --quality {wildcards.quality} "
        "--seed {wildcards.seed} --job {params.job:q} --behavior {params.behavior} "
        "--out {output.raw} > {log} 2>&1"


rule mask:
    input:
        raw=RAW,
    output:
        team=TEAM,
    conda:
        "../../envs/sim.yaml"
    log:
        layout.log(RESULTS, "mask", DATASET_JOB),
    benchmark:
        layout.benchmark(RESULTS, "mask", DATASET_JOB)
    resources:
        **tier_resources("mask"),  # mem_mb: tiers.<tier>.resources in the config
    shell:
        "python -m maccabench mask --raw {input.raw} --out {output.team} > {log} 2>&1"


rule datasets:
    input:
        expand(
            TEAM,
            env=TIER["envs"],
            quality=TIER["qualities"],
            seed=TIER["dataset_seeds"],
        ),
