#!/usr/bin/env python3
"""Remote cache throughput: `hhi push` / `hhi pull` against `aws s3 cp` (PyPI awscli), to the
same local S3-compatible server (moto, started by tools/s3_server.sh), same files, same run.

    python3 tools/bench_remote.py [--hhi target/release/hhi] [--big-mib 256] [--files 1000]

Two data sets: one large file (multipart up, ranged parallel reads down for hhi; awscli's
own multipart both ways) and a folder of many 64 KiB files. hhi's figures include what it
does beyond copying: a HEAD per object (skip what the remote has), the record, and on pull
the BLAKE3 check of every byte and publishing into the store. Each figure is the best of
`--reps` runs, each into a fresh prefix. Prints a Markdown table with MB/s and the ratio.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 9391
VENV = os.environ.get("HHI_S3_VENV", "/opt/hhi-s3")


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(cmd, env, cwd=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hhi", default=os.path.join(ROOT, "target/release/hhi"))
    ap.add_argument("--big-mib", type=int, default=256)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    subprocess.run([os.path.join(ROOT, "tools/s3_server.sh"), "start", str(PORT)], check=True)
    aws = os.path.join(VENV, "bin/aws")
    if not os.path.exists(aws):
        subprocess.run([os.path.join(VENV, "bin/pip"), "install", "-q", "awscli"], check=True)
    ep = f"http://127.0.0.1:{PORT}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", AWS_ENDPOINT_URL=ep)
    env.pop("HHI_REMOTE", None)
    work = tempfile.mkdtemp(prefix="hhi-bench-remote-")
    try:
        data = os.path.join(work, "data")
        os.makedirs(os.path.join(data, "many"))
        big = os.path.join(data, "big.bin")
        with open(big, "wb") as f:
            for _ in range(args.big_mib):
                f.write(os.urandom(1 << 20))
        for i in range(args.files):
            with open(os.path.join(data, "many", f"f{i:05}"), "wb") as f:
                f.write(os.urandom(64 << 10))
        sets = {
            f"1 file, {args.big_mib} MiB": ("big.bin", args.big_mib << 20, False),
            f"{args.files} files of 64 KiB": ("many", args.files * (64 << 10), True),
        }
        rows = []
        for label, (name, nbytes, recursive) in sets.items():
            proj = os.path.join(work, f"proj-{name}")
            os.makedirs(proj)
            with open(os.path.join(proj, "p.toml"), "w") as f:
                f.write(f'[stages.data]\nkind = "files"\npath = "{os.path.join(data, name)}"\n')
            penv = dict(env, HHI_STORE=os.path.join(proj, "store"))
            timed([args.hhi, "run", "p.toml", "-q"], penv, cwd=proj)
            best = {"hhi up": 1e9, "hhi down": 1e9, "aws up": 1e9, "aws down": 1e9}
            for rep in range(args.reps):
                remote = f"s3://hhi-test/bench/{name}-{rep}-{os.getpid()}"
                best["hhi up"] = min(best["hhi up"], timed(
                    [args.hhi, "push", "p.toml", "--remote", remote], penv, cwd=proj))
                fresh = dict(penv, HHI_STORE=os.path.join(proj, f"store-pull-{rep}"))
                best["hhi down"] = min(best["hhi down"], timed(
                    [args.hhi, "pull", "p.toml", "--remote", remote], fresh, cwd=proj))
                dst = f"s3://hhi-test/bench-aws/{name}-{rep}-{os.getpid()}"
                rec = ["--recursive"] if recursive else []
                best["aws up"] = min(best["aws up"], timed(
                    [aws, "s3", "cp", "--quiet", os.path.join(data, name), dst] + rec, env))
                back = os.path.join(work, f"back-{name}-{rep}")
                best["aws down"] = min(best["aws down"], timed(
                    [aws, "s3", "cp", "--quiet", dst, back] + rec, env))
            mb = nbytes / 1e6
            for way in ("up", "down"):
                h, a = best[f"hhi {way}"], best[f"aws {way}"]
                rows.append((label, way, mb / h, mb / a, a / h))
        print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; server: moto (Python) on the loopback")
        print()
        print("| data | direction | hhi MB/s | aws s3 cp MB/s | hhi / aws |")
        print("|---|---|---|---|---|")
        for label, way, h, a, r in rows:
            print(f"| {label} | {'upload' if way == 'up' else 'download'} | {h:.0f} | {a:.0f} | {r:.2f}x |")
        print(json.dumps({"rows": rows}), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run([os.path.join(ROOT, "tools/s3_server.sh"), "stop", str(PORT)])


if __name__ == "__main__":
    main()
