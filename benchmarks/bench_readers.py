"""Native label readers at the data sets' sizes: rows/s of BP4D, DISFA, Aff-Wild2.

Writes each layout at its published size (BP4D 146,847 frames in 328
sequences of 41 subjects; DISFA 27 subjects x 4,845 frames, 12 AU files each
and one 16x16 MJPG AVI per subject; Aff-Wild2 150,000 frames in 300 videos),
with an empty file per frame (the readers list each frame folder once, never
stat a frame; DISFA reads each video's frame count once), then times the
reader (``aulib.data.sources.<name>.read``, file checks on), best of
``--repeats``. ``--quick`` writes a tenth.

    .venv/bin/python benchmarks/bench_readers.py [--quick] [--repeats 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import row  # noqa: E402

#: Frames at the published sizes (ME-GraphAU's lists: BP4D 146,847, DISFA 130,814 of 27 x 4,845).
SIZES = {"bp4d": 146_847, "disfa": 27 * 4_845, "affwild2": 150_000}
BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def _touch_all(folder: Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).touch()


def write_bp4d(root: Path, n: int, rng) -> None:
    subjects = [f"{s}{k:03d}" for s in "FM" for k in range(1, 24 if s == "F" else 19)][:41]
    seqs = [(s, f"T{t}") for s in subjects for t in range(1, 9)]
    per = int(np.ceil(n / len(seqs)))
    folder = root / "AUCoding" / "AU_OCC"
    folder.mkdir(parents=True)
    header = "0," + ",".join(map(str, BP4D_AUS))
    for s, t in seqs:
        frames = np.arange(100, 100 + per)
        codes = rng.choice(np.array(["0", "1", "9"]), size=(per, len(BP4D_AUS)), p=[0.7, 0.28, 0.02])
        body = "\n".join(f"{f}," + ",".join(c) for f, c in zip(frames.tolist(), codes.tolist()))
        (folder / f"{s}_{t}.csv").write_text(header + "\n" + body + "\n")
        _touch_all(root / "img" / s / t, [f"{f}.jpg" for f in frames])


def write_disfa(root: Path, n: int, rng) -> None:
    import cv2
    per = 4_845 if n >= 27 * 4_845 else int(np.ceil(n / 27))
    for k in range(27):
        sn = f"SN{k + 1:03d}"
        folder = root / "ActionUnit_Labels" / sn
        folder.mkdir(parents=True)
        for au in DISFA_AUS:
            values = rng.choice(6, size=per, p=[0.7, 0.1, 0.08, 0.06, 0.04, 0.02])
            (folder / f"{sn}_au{au}.txt").write_text("".join(f"{i + 1},{v}\n" for i, v in enumerate(values.tolist())))
        path = root / "Video_LeftCamera" / f"LeftVideo{sn}_comp.avi"
        path.parent.mkdir(parents=True, exist_ok=True)
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (16, 16))
        frame = np.zeros((16, 16, 3), np.uint8)
        for _ in range(per):
            w.write(frame)
        w.release()


def write_affwild2(root: Path, n: int, rng) -> None:
    videos, per = 300, int(np.ceil(n / 300))
    folder = root / "annotations" / "AU_Detection_Challenge"
    header = "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"
    for v in range(videos):
        split = "Validation_Set" if v % 4 == 0 else "Train_Set"
        (folder / split).mkdir(parents=True, exist_ok=True)
        codes = rng.choice(np.array(["0", "1"]), size=(per, 12), p=[0.8, 0.2]).astype("<U2")
        codes[: per // 50] = "-1"
        (folder / split / f"video{v}.txt").write_text(header + "\n" + "\n".join(",".join(c) for c in codes.tolist())
                                                      + "\n")
        _touch_all(root / "cropped_aligned" / f"video{v}", [f"{i:05d}.jpg" for i in range(1, per + 1)])


WRITERS = {"bp4d": write_bp4d, "disfa": write_disfa, "affwild2": write_affwild2}


def measure(name: str, n: int, repeats: int) -> dict:
    import warnings

    from aulib.data.sources import SOURCES, source_settings
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / name
        t0 = time.perf_counter()
        WRITERS[name](root, n, np.random.default_rng(0))
        write_s = time.perf_counter() - t0
        best, rows = float("inf"), 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tables, _ = SOURCES[name].read(root, source_settings(name, None))
            best = min(best, time.perf_counter() - t0)
            rows = sum(len(t) for t in tables.values())
    return {"name": name, "frames": rows, "seconds": best, "rows_per_s": rows / best, "write_s": write_s}


def run(quick: bool = False, repeats: int = 2) -> list[dict]:
    out = []
    for name, n in SIZES.items():
        m = measure(name, n // 10 if quick else n, repeats)
        out.append(row(f"read {name} native labels ({m['frames']:,} frames)",
                       f"{m['seconds']:.2f} s, {m['rows_per_s']:,.0f} rows/s", None,
                       expect="whole set in seconds"))
        print(f"{name}: {m['frames']} frames in {m['seconds']:.2f} s ({m['rows_per_s']:,.0f} rows/s); "
              f"layout written in {m['write_s']:.1f} s", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    for r in run(args.quick, args.repeats):
        print(f"{r['name']:55s} {r['measured']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
