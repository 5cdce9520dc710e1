"""Consecutive DISFA rehearsals, a long check outside CI (issue 31, point 1).

``python benchmarks/disfa_rehearsals.py --n 20`` runs docs/disfa.md's two
rehearsal commands (as tests/e2e/test_benchmark_rehearsal.py does: SynthAU written
in DISFA's native layout, left-camera AVIs, MTCNN faces, the shipped profile at
toy size with crop and loader workers) ``--n`` times, each on freshly written
data (seed k) in its own workspace, each under ``--timeout`` minutes, and
prints one line per rehearsal and how many finished with their benchmark table.
A rehearsal that hangs (as crop building from videos with forked workers did)
counts as not finished, and the next one starts. Exit status 0 when all finished.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "helpers"), str(REPO / "tests" / "e2e")]

from native_layouts import write_disfa  # noqa: E402  (tests/helpers/: the native layouts the tests write)
from test_benchmark_rehearsal import CASES, page_commands  # noqa: E402
from test_rehearsal import write_weights  # noqa: E402

EXAMPLE_ROOT, GROUP, FOLDS, _ = CASES["disfa"]
SUBJECTS = ("SN002", "SN010", "SN001", "SN013", "SN018", "SN011", "SN003", "SN029", "SN023")


def rehearse(k: int, tmp: Path, weights: tuple[Path, Path], timeout_min: float) -> tuple[bool, float, str]:
    """Rehearsal ``k`` in ``tmp/k``: (finished with its table, minutes, last lines of output when not)."""
    work = tmp / f"r{k:02d}"
    root = work / "data" / "DISFA"
    write_disfa(root, subjects=SUBJECTS, frames=14, seed=k)
    weight_file, hf_home = weights
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    env.pop("AULIB_PROFILE", None)
    t0 = time.time()
    for command in page_commands("disfa"):
        argv = [str(root) if a == EXAMPLE_ROOT else f"{work}/{a[5:]}" if a.startswith("/tmp/")
                else a.replace("/weights/efficientnet_b4.safetensors", str(weight_file)) for a in shlex.split(command)]
        left = timeout_min * 60 - (time.time() - t0)
        try:
            done = subprocess.run([sys.executable, *argv[1:]], env=env, cwd=work, capture_output=True, text=True,
                                  timeout=max(left, 1))
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            return False, (time.time() - t0) / 60, f"timed out after {timeout_min:g} min:\n{out[-1500:]}"
        if done.returncode != 0:
            return False, (time.time() - t0) / 60, (done.stdout + done.stderr)[-1500:]
    table = work / "disfa_rehearsal" / "results" / "tables" / f"benchmark_disfa_{GROUP}.md"
    return table.is_file(), (time.time() - t0) / 60, "" if table.is_file() else f"no {table}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20, help="rehearsals to run (default 20)")
    ap.add_argument("--timeout", type=float, default=30.0, help="minutes one rehearsal may take (default 30)")
    ap.add_argument("--keep", action="store_true", help="keep the workspaces (default: each removed once done)")
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="disfa_rehearsals_") as tmp:
        tmp = Path(tmp)
        weights = write_weights(tmp)
        finished = 0
        for k in range(a.n):
            ok, minutes, tail = rehearse(k, tmp, weights, a.timeout)
            finished += ok
            print(f"rehearsal {k + 1}/{a.n}: {'finished' if ok else 'FAILED'} in {minutes:.1f} min "
                  f"({finished} finished so far)", flush=True)
            if tail:
                print("    " + tail.replace("\n", "\n    "), flush=True)
            if not a.keep:
                subprocess.run(["rm", "-rf", str(tmp / f"r{k:02d}")], check=False)
        print(f"{finished} of {a.n} DISFA rehearsals finished", flush=True)
    return 0 if finished == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
