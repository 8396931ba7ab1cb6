# Online behaviour learning (MATD3) for one env and behaviour/dataset seed.


rule behavior:
    output:
        summary=f"{RESULTS}/behavior/{{env}}/seed{{seed}}/summary.json",
        policies=f"{RESULTS}/behavior/{{env}}/seed{{seed}}/policies.pt",
        replay=f"{RESULTS}/behavior/{{env}}/seed{{seed}}/replay_medium.npz",
        curve=f"{RESULTS}/behavior/{{env}}/seed{{seed}}/curve.csv",
    params:
        job=lambda w: job_json(mbconfig.behavior_job(config, w.env, int(w.seed))),
    conda:
        "../../envs/sim.yaml"
    log:
        f"{RESULTS}/logs/behavior/{{env}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/behavior/{{env}}/seed{{seed}}.tsv"
    threads: 1  # small matmuls: two single-threaded jobs side by side beat one with two threads
    resources:
        **tier_resources("behavior"),  # runtime (x attempt), mem_mb: tiers.<tier>.resources in the config
        cpus_per_task=1,
    shell:
        "python -m maccabench behavior --env {wildcards.env} --seed {wildcards.seed} "
        "--job {params.job:q} --out $(dirname {output.summary}) --threads {threads} --no-progress > {log} 2>&1"
