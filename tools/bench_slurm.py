#!/usr/bin/env python3
"""Submission overhead of `executor = "slurm"`: the same pipeline of N trivial stages run by
hhi locally, by hhi on Slurm, and by Snakemake locally and with its Slurm executor (when
`snakemake` and `snakemake-executor-plugin-slurm` are importable from SNAKEMAKE, a
snakemake binary path; default: `snakemake` on PATH).

    tools/bench_slurm.py [--stages 16] [--hhi target/release/hhi] [--snakemake PATH]

Needs a running Slurm cluster (as root: tools/slurm_cluster.sh start). The pipeline is
a fan-out: one source stage, N-2 independent stages reading it, one stage gathering
them, each a one-line shell command, so the times are overhead, not work. Prints one JSON
object: wall seconds per system and the overhead per stage over the local run.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def hhi_pipeline(n, executor):
    lines = ["[pipeline]", f'executor = "{executor}"', 'slurm = { cpus = 1 }', ""]
    lines += ["[stages.src]", 'kind = "command"', 'outputs = ["o"]', 'run = "echo 1 > $HHI_OUT_o"', ""]
    mids = [f"m{i}" for i in range(n - 2)]
    for m in mids:
        lines += [f"[stages.{m}]", 'kind = "command"', 'inputs = { x = "src.o" }', 'outputs = ["o"]',
                  f'run = "cat $HHI_IN_x > $HHI_OUT_o; echo {m} >> $HHI_OUT_o"', ""]
    ins = ", ".join(f'{m} = "{m}.o"' for m in mids)
    cat = " ".join(f"$HHI_IN_{m}" for m in mids)
    lines += ["[stages.gather]", 'kind = "command"', f"inputs = {{ {ins} }}", 'outputs = ["o"]',
              f'run = "cat {cat} > $HHI_OUT_o"', ""]
    return "\n".join(lines)


def snakefile(n):
    mids = [f"m{i}" for i in range(n - 2)]
    s = ["rule all:", '    input: "out/gather.txt"', "",
         "rule src:", '    output: "out/src.txt"', '    shell: "echo 1 > {output}"', ""]
    s += ["rule mid:", '    input: "out/src.txt"', '    output: "out/{m}.txt"',
          '    shell: "cat {input} > {output}; echo {wildcards.m} >> {output}"', ""]
    s += ["rule gather:", "    input: " + ", ".join(f'"out/{m}.txt"' for m in mids),
          '    output: "out/gather.txt"', '    shell: "cat {input} > {output}"', ""]
    return "\n".join(s)


def timed(cmd, cwd, env=None, timeout=600):
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        sys.stderr.write(f"{' '.join(cmd)}: no result after {timeout}s\n")
        return None
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.stderr.write(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}\n")
        return None
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, default=16)
    ap.add_argument("--hhi", default="target/release/hhi")
    ap.add_argument("--snakemake", default=shutil.which("snakemake") or "snakemake")
    a = ap.parse_args()
    hhi = os.path.abspath(a.hhi)
    n = a.stages
    cpu = open("/proc/cpuinfo").read().split("model name", 1)[1].split("\n", 1)[0]
    out = {"stages": n, "cpu": cpu.split(":", 1)[1].strip(), "cores": os.cpu_count()}
    for executor in ["local", "slurm"]:
        d = tempfile.mkdtemp()
        open(os.path.join(d, "p.toml"), "w").write(hhi_pipeline(n, executor))
        out[f"hhi_{executor}_s"] = timed([hhi, "--store", "store", "run", "p.toml", "-q"], d)
        shutil.rmtree(d)
    if shutil.which(a.snakemake) or os.path.exists(a.snakemake):
        for executor in ["local", "slurm"]:
            d = tempfile.mkdtemp()
            open(os.path.join(d, "Snakefile"), "w").write(snakefile(n))
            cmd = [a.snakemake, "--cores", "2", "--quiet"]
            if executor == "slurm":
                cmd = [a.snakemake, "--executor", "slurm", "--jobs", str(n), "--quiet",
                       "--default-resources", "slurm_partition=debug", "runtime=10", "mem_mb=100"]
            out[f"snakemake_{executor}_s"] = timed(cmd, d, timeout=300)
            shutil.rmtree(d)
    else:
        out["snakemake"] = "not installed (pip install snakemake snakemake-executor-plugin-slurm)"
    for tool in ["hhi", "snakemake"]:
        loc, sl = out.get(f"{tool}_local_s"), out.get(f"{tool}_slurm_s")
        if loc is not None and sl is not None:
            out[f"{tool}_overhead_per_stage_s"] = (sl - loc) / n
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
