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
        # minutes; a retry after SLURM killed the job (time limit, preemption) asks for more
        runtime=lambda w, attempt: {"smoke": 10, "quick": 60, "paper": 720}[config["tier"]] * attempt,
        mem_mb=lambda w: {"smoke": 2000, "quick": 6000, "paper": 32000}[config["tier"]],
        cpus_per_task=1,
    shell:
        "python -m maccabench behavior --env {wildcards.env} --seed {wildcards.seed} "
        "--job {params.job:q} --out $(dirname {output.summary}) --threads {threads} --no-progress > {log} 2>&1"
