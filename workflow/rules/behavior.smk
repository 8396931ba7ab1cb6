# Online behaviour learning (MATD3) for one env and behaviour/dataset seed.

BEHAVIOR = layout.behavior_files(RESULTS, "{env}", "{seed}")   # summary, policies, replay, curve
BEHAVIOR_JOB = layout.behavior_job("{env}", "{seed}")


rule behavior:
    output:
        **BEHAVIOR,
    params:
        job=lambda w: job_json(mbconfig.behavior_job(config, w.env, int(w.seed))),
    conda:
        "../../envs/sim.yaml"
    log:
        layout.log(RESULTS, "behavior", BEHAVIOR_JOB),
    benchmark:
        layout.benchmark(RESULTS, "behavior", BEHAVIOR_JOB)
    threads: 1  # small matmuls: two single-threaded jobs side by side beat one with two threads
    resources:
        **tier_resources("behavior"),  # runtime (x attempt), mem_mb: tiers.<tier>.resources in the config
        cpus_per_task=1,
    shell:
        "python -m maccabench behavior --env {wildcards.env} --seed {wildcards.seed} "
        "--job {params.job:q} --out $(dirname {output.summary}) --threads {threads} --no-progress > {log} 2>&1"
