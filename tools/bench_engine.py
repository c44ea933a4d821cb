#!/usr/bin/env python3
"""Engine benchmarks, each reported as a ratio against a reference tool run in this script.

1. No-op `hhi run` of a generated 100-stage `command` pipeline (median wall time) against
   `dvc repro` of the same 100 commands (DVC from PyPI: `pip install dvc`).
1b. The first run of that pipeline into an empty store, against DVC's first `dvc repro`.
1c. A command stage that writes a folder of 20,000 empty files: `hhi run` against the bare
   command run by `sh` (what the engine adds) and against `dvc repro` of the same stage.
2. Hashing a 1 GiB file and a folder of 10,000 small files: MB/s of `hhi hash` against
   `b3sum` (Debian package `b3sum`).

Usage: cargo build --release && python3 tools/bench_engine.py [--runs N] [--skip-dvc]
Prints a table and writes the numbers as JSON to target/bench-engine.json.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HHI = Path(os.environ.get("HHI_BENCH_BIN", ROOT / "target" / "release" / "hhi"))


def median_time(cmd, cwd, runs, env=None):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def chain_toml(n: int) -> str:
    lines = ['[pipeline]\nname = "bench100"\n']
    for i in range(n):
        lines.append(f'[stages.s{i}]\nkind = "command"\noutputs = ["o"]\n')
        if i == 0:
            lines.append('run = "echo 0 > \\"$HHI_OUT_o\\""\n')
        else:
            lines.append(f'inputs = {{ prev = "s{i-1}.o" }}\n')
            lines.append(f'run = "cat \\"$HHI_IN_prev\\" > \\"$HHI_OUT_o\\"; echo {i} >> \\"$HHI_OUT_o\\""\n')
    return "".join(lines)


def chain_dvc_yaml(n: int) -> str:
    stages = []
    for i in range(n):
        if i == 0:
            stages.append(f"  s{i}:\n    cmd: echo 0 > o{i}\n    outs: [o{i}]\n")
        else:
            stages.append(f"  s{i}:\n    cmd: cat o{i-1} > o{i}; echo {i} >> o{i}\n    deps: [o{i-1}]\n    outs: [o{i}]\n")
    return "stages:\n" + "".join(stages)


DVC_ENV = dict(os.environ, DVC_NO_ANALYTICS="1")


def first_runs(tmp: Path, n: int, runs: int, skip_dvc: bool):
    """Wall time of a first run into an empty store / fresh DVC project (median)."""
    times = []
    for r in range(runs):
        d = tmp / f"hhi-first-{r}"
        d.mkdir()
        (d / "p.toml").write_text(chain_toml(n))
        t = time.perf_counter()
        subprocess.run([HHI, "run", "p.toml", "-q"], cwd=d, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    out = {"stages": n, "hhi_first_median_ms": statistics.median(times) * 1000}
    if skip_dvc or shutil.which("dvc") is None:
        out["dvc"] = "skipped (pip install dvc)"
        return out
    dtimes = []
    for r in range(max(1, runs // 3)):
        d = tmp / f"dvc-first-{r}"
        d.mkdir()
        (d / "dvc.yaml").write_text(chain_dvc_yaml(n))
        subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=d, check=True, env=DVC_ENV)
        t = time.perf_counter()
        subprocess.run(["dvc", "repro", "-q"], cwd=d, check=True, env=DVC_ENV, stdout=subprocess.DEVNULL)
        dtimes.append(time.perf_counter() - t)
    dvc_t = statistics.median(dtimes)
    out.update(dvc_first_median_ms=dvc_t * 1000, dvc_over_hhi=dvc_t / (out["hhi_first_median_ms"] / 1000))
    return out


def many_files(tmp: Path, runs: int, skip_dvc: bool):
    """One stage writing a folder of 20,000 empty files."""
    make = 'mkdir -p "$D" && cd "$D" && seq 1 20000 | xargs touch'
    bare = []
    for r in range(runs):
        d = tmp / f"bare-{r}"
        t = time.perf_counter()
        subprocess.run(["sh", "-c", make], check=True, env=dict(os.environ, D=str(d)))
        bare.append(time.perf_counter() - t)
    hh = []
    for r in range(runs):
        d = tmp / f"hhi-20k-{r}"
        d.mkdir()
        (d / "p.toml").write_text(
            '[stages.many]\nkind = "command"\noutputs = ["d"]\n'
            f"run = '{make.replace('$D', '$HHI_OUT_d')}'\n")
        t = time.perf_counter()
        subprocess.run([HHI, "run", "p.toml", "-q"], cwd=d, check=True, stdout=subprocess.DEVNULL)
        hh.append(time.perf_counter() - t)
    out = {"files": 20000, "bare_command_median_s": statistics.median(bare),
           "hhi_run_median_s": statistics.median(hh)}
    out["hhi_over_bare"] = out["hhi_run_median_s"] / out["bare_command_median_s"]
    if skip_dvc or shutil.which("dvc") is None:
        out["dvc"] = "skipped (pip install dvc)"
        return out
    dt = []
    for r in range(max(1, runs // 3)):
        d = tmp / f"dvc-20k-{r}"
        d.mkdir()
        (d / "dvc.yaml").write_text(
            "stages:\n  many:\n    cmd: mkdir -p d && cd d && seq 1 20000 | xargs touch\n    outs: [d]\n")
        subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=d, check=True, env=DVC_ENV)
        t = time.perf_counter()
        subprocess.run(["dvc", "repro", "-q"], cwd=d, check=True, env=DVC_ENV, stdout=subprocess.DEVNULL)
        dt.append(time.perf_counter() - t)
    out.update(dvc_repro_median_s=statistics.median(dt),
               dvc_over_hhi=statistics.median(dt) / out["hhi_run_median_s"])
    return out


def noop_pipeline(tmp: Path, n: int, runs: int, skip_dvc: bool):
    hdir = tmp / "hhi-noop"
    hdir.mkdir()
    (hdir / "p.toml").write_text(chain_toml(n))
    subprocess.run([HHI, "run", "p.toml", "-q"], cwd=hdir, check=True, stdout=subprocess.DEVNULL)
    time.sleep(2.5)  # past the stat cache's racy window, as for any real second run
    subprocess.run([HHI, "run", "p.toml", "-q"], cwd=hdir, check=True, stdout=subprocess.DEVNULL)
    hhi_t = median_time([HHI, "run", "p.toml", "-q"], hdir, runs)
    out = {"stages": n, "hhi_noop_median_ms": hhi_t * 1000}
    if skip_dvc or shutil.which("dvc") is None:
        out["dvc"] = "skipped (pip install dvc)"
        return out
    ddir = tmp / "dvc-noop"
    ddir.mkdir()
    (ddir / "dvc.yaml").write_text(chain_dvc_yaml(n))
    env = DVC_ENV
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=ddir, check=True, env=env)
    subprocess.run(["dvc", "repro", "-q"], cwd=ddir, check=True, env=env, stdout=subprocess.DEVNULL)
    dvc_runs = max(3, runs // 4)  # dvc is slow; fewer runs keep the script short
    dvc_t = median_time(["dvc", "repro", "-q"], ddir, dvc_runs, env=env)
    out.update(dvc_noop_median_ms=dvc_t * 1000, dvc_over_hhi=dvc_t / hhi_t)
    return out


def hashing(tmp: Path, runs: int):
    big = tmp / "big.bin"
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(1024):
            f.write(block[i % 7:] + block[: i % 7])
    small = tmp / "small"
    small.mkdir()
    total_small = 0
    for i in range(10_000):
        data = os.urandom(1000 + (i * 37) % 7000)
        (small / f"f{i:05}.bin").write_bytes(data)
        total_small += len(data)
    files = sorted(str(p) for p in small.iterdir())
    res = {}
    for name, hhi_cmd, b3_cmd, nbytes in [
        ("1GiB file", [HHI, "hash", big], ["b3sum", big], big.stat().st_size),
        ("10k small files", [HHI, "hash", small], ["b3sum", *files], total_small),
    ]:
        # Warm the page cache for both, then alternate.
        median_time(hhi_cmd, tmp, 1)
        median_time(b3_cmd, tmp, 1)
        th = median_time(hhi_cmd, tmp, runs)
        tb = median_time(b3_cmd, tmp, runs)
        res[name] = {
            "bytes": nbytes,
            "hhi_MBps": nbytes / th / 1e6,
            "b3sum_MBps": nbytes / tb / 1e6,
            "hhi_over_b3sum": tb / th,
        }
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--skip-dvc", action="store_true")
    ap.add_argument("--skip-hash", action="store_true")
    a = ap.parse_args()
    if not HHI.exists():
        sys.exit("build first: cargo build --release")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    results = {"machine": f"{os.cpu_count()} cores, {cpu}"}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        results["noop"] = noop_pipeline(tmp, 100, a.runs, a.skip_dvc)
        results["first_run"] = first_runs(tmp, 100, max(3, a.runs // 4), a.skip_dvc)
        results["many_files"] = many_files(tmp, max(3, a.runs // 4), a.skip_dvc)
        if not a.skip_hash:
            if shutil.which("b3sum") is None:
                results["hashing"] = "skipped (apt-get install b3sum)"
            else:
                results["hashing"] = hashing(tmp, max(3, a.runs // 4))
    print(json.dumps(results, indent=2))
    (ROOT / "target").mkdir(exist_ok=True)
    (ROOT / "target" / "bench-engine.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
