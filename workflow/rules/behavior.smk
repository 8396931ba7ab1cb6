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
        # minutes; a retry after SLURM killed the job (time limit, preemption) asks for more
        runtime=lambda w, attempt: {"smoke": 10, "quick": 60, "paper": 720}[config["tier"]] * attempt,
        mem_mb=lambda w: {"smoke": 2000, "quick": 6000, "paper": 32000}[config["tier"]],
        cpus_per_task=1,
    shell:
        "python -m maccabench behavior --env {wildcards.env} --seed {wildcards.seed} "
        "--job {params.job:q} --out $(dirname {output.summary}) --threads {threads} --no-progress > {log} 2>&1"
