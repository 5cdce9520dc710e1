"""Run every benchmark and print one table of ratios, measured side by side in one run.

    python -m benchmarks [--quick] [--only NAME ...] [--demo-log PATH] [--json PATH] [--log PATH]
        [--threads N] [--no-baseline] [-v]
    python -m benchmarks --gpu [--toy] [--device auto|cuda|cpu]   # GPU rates, paper GPU-hours

``--gpu`` runs only ``benchmarks/bench_gpu.py`` (one GPU, about 5 minutes;
``--toy``: the same code at toy size on the CPU, as the tests run it).

Each benchmark (``benchmarks/bench_<name>.py``, names in
:data:`benchmarks.BENCHMARKS`) runs in its own process, so its peak memory is
its own: the largest resident set of any of its processes (``wait4``
``ru_maxrss``, which counts the processes it waited for, e.g. torchrun's
workers) and the largest sum over its process tree (psutil, sampled every
0.2 s). A ``baseline`` process that only imports torch, timm and aulib gives
the floor every benchmark starts from. The demo pipeline's peak memory is read
from ``--demo-log`` (the output of ``/usr/bin/time -v``) or
``runs/demo/pipeline_peak_rss.txt`` when present.

``--quick`` shrinks every benchmark (about 2 minutes on 2 cores); the full run
takes up to about 10. ``scale`` (the paper-scale cost model, about 15 minutes)
runs only when named: ``--only scale``. Every benchmark process gets ``OMP_NUM_THREADS=--threads``
(default 1). Benchmark output goes to ``--log`` (``-v`` shows it live).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import BENCHMARKS, ON_REQUEST

REPO = Path(__file__).resolve().parent.parent
BASELINE = "baseline"
GPU = "gpu"   # benchmarks/bench_gpu.py: only with --gpu (at full size it needs a GPU)
DEMO_RSS_FILE = Path("runs") / "demo" / "pipeline_peak_rss.txt"


# --------------------------------------------------------------------------- child side

def _baseline() -> list[dict]:
    """What every benchmark process holds before it measures anything."""
    for module in ("torch", "timm", "aulib.data.dataset", "aulib.model.network"):
        importlib.import_module(module)
    return []


def run_child(name: str, quick: bool, out: Path, device: str = "auto") -> None:
    """Run one benchmark in this process and write its rows to ``out`` (JSON)."""
    from aulib.io import write_json

    extra = {"device": device} if name == GPU else {}
    rows = _baseline() if name == BASELINE else importlib.import_module(f"benchmarks.bench_{name}").run(quick, **extra)
    write_json(out, rows)


# --------------------------------------------------------------------------- parent side

def _tree_rss_sampler(pid: int, peak: list[float], stop: threading.Event) -> None:
    """Largest sum of RSS (MiB) over ``pid`` and its descendants, into ``peak[0]``."""
    try:
        import psutil
    except ImportError:   # psutil is optional: then only the largest process is reported
        return
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.wait(0.2):
        try:
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        peak[0] = max(peak[0], total / 2**20)


def run_benchmark(name: str, quick: bool, verbose: bool, log, threads: int = 1, device: str = "auto") -> dict:
    """Run ``name`` in a fresh process; its rows, seconds, peak memory, exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, "-m", "benchmarks", "--child", name, "--out", str(out), "--device", device] + (
            ["--quick"] if quick else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               "AULIB_PROGRESS": "0", "PYTHONUNBUFFERED": "1"}
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak_tree, stop = [0.0], threading.Event()
        sampler = threading.Thread(target=_tree_rss_sampler, args=(proc.pid, peak_tree, stop), daemon=True)
        sampler.start()
        captured = []
        for line in proc.stdout:
            captured.append(line)
            log.write(line)
            if verbose:
                sys.stderr.write(line)
        _, status, usage = os.wait4(proc.pid, 0)   # the rusage of this child (and what it waited for)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        stop.set()
        sampler.join()
        rows = json.loads(out.read_text()) if proc.returncode == 0 and out.exists() else None
    return {"benchmark": name, "rows": rows, "seconds": seconds, "returncode": proc.returncode,
            "peak_rss_mib": usage.ru_maxrss / 1024, "peak_tree_mib": peak_tree[0], "tail": "".join(captured[-15:])}


def demo_peak(demo_log: str | None) -> tuple[float | None, str]:
    """Peak RSS (MiB) of the demo pipeline and where it was read, or (None, why not)."""
    path = Path(demo_log) if demo_log else REPO / DEMO_RSS_FILE
    if not path.exists():
        return None, (f"--demo-log {path} not found" if demo_log else "not measured in this run")
    text = path.read_text(errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", text)
    if m:
        return int(m.group(1)) / 1024, f"from {path}"
    m = re.search(r"([\d.]+)\s*(KiB|kB|kbytes|MiB|MB|GiB|GB)\b", text)
    if m:
        factor = {"KiB": 1 / 1024, "kB": 1 / 1024, "kbytes": 1 / 1024, "MiB": 1, "MB": 1, "GiB": 1024, "GB": 1024}
        return float(m.group(1)) * factor[m.group(2)], f"from {path}"
    return None, f"not measured in this run ({path} holds no 'Maximum resident set size' nor a size with a unit)"


def machine() -> dict:
    """nproc, CPU model, RAM, torch version, load average."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else float("nan")
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": ram / 2**30,
            "torch": torch.__version__, "python": platform.python_version(), "gpu": gpu,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "load_start": os.getloadavg()}


def _fmt_ratio(r: dict) -> str:
    return "" if r["ratio"] is None else f"{r['ratio']:.3g}" if r["ratio"] < 10 else f"{r['ratio']:.0f}"


def table_lines(results: list[dict], demo: tuple[float | None, str]) -> list[str]:
    """One Markdown table (columns aligned, so it reads in a terminal too)."""
    header = ["benchmark", "comparison", "measured side by side", "ratio", "target", "met", "peak MiB"]
    body = []
    for res in results:
        mem = f"{res['peak_rss_mib']:.0f}" + (f" ({res['peak_tree_mib']:.0f})" if res["peak_tree_mib"] else "")
        if res["rows"] is None:
            body.append([res["benchmark"], "FAILED", f"exit code {res['returncode']}, see the log", "", "", "no", mem])
            continue
        if res["benchmark"] == BASELINE:
            body.append([BASELINE, "python + torch + timm + aulib imported (floor of the torch benchmarks)",
                         f"{res['seconds']:.0f} s", "", "", "", mem])
            continue
        for k, r in enumerate(res["rows"]):
            met = "" if r["ok"] is None else ("yes" if r["ok"] else "NO")
            body.append([res["benchmark"] if k == 0 else "", r["name"], r["measured"], _fmt_ratio(r), r["target"],
                         met, mem if k == 0 else ""])
    peak, where = demo
    body.append(["demo", "demo pipeline (python -m aulib.pipeline --profile demo)", where, "", "", "",
                 "" if peak is None else f"{peak:.0f}"])
    widths = [max(len(str(x[i])) for x in [header] + body) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(b) for b in body]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: about 2 minutes on 2 cores")
    ap.add_argument("--only", action="append", default=None, metavar="NAME",
                    help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    ap.add_argument("--demo-log", default=None, metavar="PATH",
                    help="output of '/usr/bin/time -v python -m aulib.pipeline --profile demo'")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write every figure to this JSON file")
    ap.add_argument("--log", default=None, metavar="PATH", help="write the benchmarks' own output here")
    ap.add_argument("--threads", type=int, default=1,
                    help="OMP_NUM_THREADS of every benchmark process (default 1: a shared machine; 0 leaves it as is)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the benchmarks' own output live")
    ap.add_argument("--no-baseline", action="store_true", help="skip the baseline process (import floor)")
    ap.add_argument("--gpu", action="store_true", help="only the GPU benchmark (bench_gpu.py: rates, paper GPU-hours)")
    ap.add_argument("--toy", action="store_true", help="with --gpu: toy size, runs on the CPU in seconds")
    ap.add_argument("--device", default="auto", help="with --gpu: auto | cuda | cpu")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child:
        run_child(a.child, a.quick, Path(a.out), a.device)
        return 0
    if a.gpu:
        import torch

        if not (a.toy or a.device == "cpu" or torch.cuda.is_available()):
            ap.error("--gpu found no CUDA device: run it on a GPU machine, or add --toy for the toy size on the CPU")
        names, a.quick, a.no_baseline = [GPU], a.toy, True
    else:
        names = a.only or [n for n in BENCHMARKS if n not in ON_REQUEST]
        unknown = sorted(set(names) - set(BENCHMARKS))
        if unknown:
            ap.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)} (and --gpu)")
        names = [n for n in BENCHMARKS if n in names]

    info = machine()
    if a.threads:
        info["omp_num_threads"] = str(a.threads)
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram_gib']:.0f} GiB RAM, GPU {info['gpu']}, "
          f"torch {info['torch']}, Python {info['python']}, OMP_NUM_THREADS {info['omp_num_threads']}; "
          f"load average at start {info['load_start'][0]:.2f}", flush=True)
    results = []
    log_path = Path(a.log) if a.log else None
    with (open(log_path, "w") if log_path else open(os.devnull, "w")) as log:
        for name in ([] if a.no_baseline else [BASELINE]) + names:
            print(f"  running {name}{' (quick)' if a.quick else ''} ...", end="", file=sys.stderr, flush=True)
            res = run_benchmark(name, a.quick, a.verbose, log, a.threads, a.device)
            print(f" {res['seconds']:.0f} s" + ("" if res["rows"] is not None else f", FAILED:\n{res['tail']}"),
                  file=sys.stderr, flush=True)
            results.append(res)
    demo = demo_peak(a.demo_log)
    info["load_end"] = os.getloadavg()
    total = sum(r["seconds"] for r in results)
    print(f"{'quick' if a.quick else 'full'} run, {total:.0f} s; load average at end {info['load_end'][0]:.2f}; "
          "peak MiB = largest process (sum over the benchmark's processes)")
    print("\n".join(table_lines(results, demo)))
    if a.json:
        from aulib.io import write_json

        write_json(a.json, {"machine": info, "quick": a.quick, "results": results,
                            "demo_peak_mib": demo[0], "demo_source": demo[1]})
    return 0 if all(r["rows"] is not None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
