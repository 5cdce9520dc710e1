"""The benchmark runner (``python -m benchmarks``): its table, targets and the
demo-memory parser. No timing is asserted: figures depend on the machine."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:   # benchmarks/ is a folder of the repository, not of the installed package
    sys.path.insert(0, str(REPO))

from benchmarks import row  # noqa: E402
from benchmarks.__main__ import demo_peak, table_lines  # noqa: E402


def test_row_checks_the_target_in_its_direction():
    assert row("a", "1 vs 2 s", 1.04, at_most=1.05)["ok"] is True
    assert row("a", "1 vs 2 s", 1.06, at_most=1.05)["ok"] is False
    assert row("b", "", 49.0, at_least=50)["ok"] is False
    assert row("b", "", 51.0, at_least=50) == {"name": "b", "measured": "", "ratio": 51.0, "target": ">= 50", "ok": True}
    info = row("c", "2.1 s", None, expect="<= 1 on 2 cores")
    assert info["ok"] is None and info["target"] == "<= 1 on 2 cores"
    with pytest.raises(ValueError, match="at most one"):
        row("d", "", 1.0, at_most=1, at_least=1)


def test_demo_peak_reads_time_v_output(tmp_path):
    log = tmp_path / "demo_time.txt"
    log.write_text("\tCommand being timed: \"python -m aulib.pipeline --profile demo\"\n"
                   "\tMaximum resident set size (kbytes): 2097152\n\tExit status: 0\n")
    peak, where = demo_peak(str(log))
    assert peak == pytest.approx(2048.0) and str(log) in where
    peak, where = demo_peak(str(tmp_path / "missing.txt"))
    assert peak is None and "not found" in where
    (tmp_path / "odd.txt").write_text("no figure here\n")
    peak, where = demo_peak(str(tmp_path / "odd.txt"))
    assert peak is None and "not measured" in where


def test_table_marks_failures_and_unmet_targets():
    results = [{"benchmark": "train", "rows": [row("overhead", "1 vs 1 ms", 1.2, at_most=1.05)], "seconds": 3.0,
                "returncode": 0, "peak_rss_mib": 900.0, "peak_tree_mib": 950.0},
               {"benchmark": "noisy", "rows": None, "seconds": 1.0, "returncode": 1,
                "peak_rss_mib": 100.0, "peak_tree_mib": 0.0}]
    lines = table_lines(results, (None, "not measured in this run"))
    assert len({len(line) for line in lines}) == 1   # aligned columns
    text = "\n".join(lines)
    assert "| NO " in text and "FAILED" in text and "900 (950)" in text and "not measured in this run" in text


def _quick_run(name: str, out: Path, timeout: int) -> list[str]:
    """``python -m benchmarks --quick --only NAME``: the lines of its table (figures in ``out``)."""
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", name, "--no-baseline",
                           "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if line.startswith("|")]


def test_quick_choose_prints_one_table(tmp_path):
    out = tmp_path / "figures.json"
    table = _quick_run("choose", out, 300)
    assert table[0].split("|")[1].strip() == "benchmark"
    # the choice is compared with the best simple baseline (numpy sort + cumsum) and gives the same answer
    assert any("choice: exact search vs numpy sort + cumsum" in line and "same best scores: True" in line
               for line in table)
    assert any("scikit-learn LogisticRegression loop, same weights" in line for line in table)
    assert any(line.startswith("| demo ") for line in table)
    figures = json.loads(out.read_text())
    (choose,) = figures["results"]
    assert choose["benchmark"] == "choose" and choose["peak_rss_mib"] > 0
    # the exact search never scores below the 19-threshold grid (a property, not a timing)
    assert "never below the 19-threshold grid: True" in choose["rows"][1]["measured"]


def test_scale_fit_recovers_exponents_and_projects():
    from benchmarks.bench_scale import fit, slope

    n = np.array([1e3, 1e4, 1e5])
    assert slope(n, 3e-6 * n ** 2) == pytest.approx(2.0)
    assert slope(n, 5e-4 * n * np.log(n)) == pytest.approx(1.1, abs=0.05)   # n log n reads ~1.1 here
    points = [{"n": int(k), "seconds": 1e-4 * k, "peak_mib": 100 + 1e-3 * k, "floor_mib": 100.0} for k in n]
    f = fit(points, 1_000_000)
    assert f["time_exponent"] == pytest.approx(1.0) and f["memory_exponent"] == pytest.approx(1.0)
    assert f["paper_seconds"] == pytest.approx(100.0) and f["paper_peak_mib"] == pytest.approx(1100.0)
    assert f["paper_core_hours"] == pytest.approx(100 / 3600)


def test_dataset_projection_uses_each_data_sets_sizes():
    """The data-set projection is arithmetic on measured points: linear points give the rows times the
    per-row cost at each data set's size, per fold where the protocol has folds."""
    from benchmarks import bench_scale as B

    def linear(extra=None):
        return {"points": [{"n": k, "seconds": 1e-3 * k, "seek_s": 1e-2 * k, "peak_mib": 100 + 1e-3 * k,
                            "floor_mib": 100.0, "disk_bytes_per_row": 10.0, "bytes_per_crop": 100.0,
                            "seek_right": 1.0, "fold2_new_bytes": 0, **(extra or {})} for k in (1000, 10000)],
                "epochs": B.EPOCHS}

    r = {stage: linear() for stage in B.DATASET_STAGES}
    bp4d = {row["what"]: row for row in B.dataset_rows(r, "bp4d")}
    splits = next(v for k, v in bp4d.items() if k.startswith("splits"))
    assert splits["n"] == 146_847 and splits["seconds"] == pytest.approx(3 * 146.847)   # x3 folds
    share = next(v for k, v in bp4d.items() if k.startswith("k-fold sharing"))
    assert share["seconds"] == pytest.approx(2 * 146.847) and share["disk"] == 0        # folds 2 and 3
    choice = next(v for k, v in bp4d.items() if k.startswith("per-AU choice on B"))
    assert choice["n"] == round(146_847 * 2 / 3 * 0.1) * 4                              # B x 4 variants
    assert not any("video" in k or "seeking" in k for k in bp4d)                        # BP4D ships frames
    disfa = [row["what"] for row in B.dataset_rows(r, "disfa")]
    assert any("seeking" in w for w in disfa)
    aff = [row["what"] for row in B.dataset_rows(r, "affwild2")]
    assert not any(w.startswith("k-fold sharing") for w in aff)                         # one official split
    base, paper = B.bp4d_gpu_hours("base", "timm", "v0"), B.bp4d_gpu_hours("paper", "timm", "v0")
    assert paper > base and B.bp4d_gpu_hours("base", "timm", "x4") > base
    assert B.bp4d_gpu_hours("base", "readme", "v0") > base          # README's 125 img/s is the slower figure


def test_quick_scale_prints_every_stage(tmp_path):
    """A toy-size run of the paper-scale cost model, so that it cannot rot."""
    out = tmp_path / "figures.json"
    table = _quick_run("scale", out, 300)
    for stage in ("labels", "faces", "crops_raw", "crops_jpeg", "splits", "noisy", "choice"):
        assert any(f"scale: {stage} time exponent" in line for line in table), stage
    (scale,) = json.loads(out.read_text())["results"]
    by_name = {r["name"]: r for r in scale["rows"]}
    size = by_name["scale: jpeg / raw crop-store bytes at 224 px (quality 90)"]
    assert size["ok"] is True            # bytes, not a timing: a JPEG crop is under 1/5 of the raw one


def test_gpu_benchmark_runs_at_toy_size_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--gpu", "--toy", "--device", "cpu", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    (gpu,) = json.loads(out.read_text())["results"]
    names = [r["name"] for r in gpu["rows"]]
    assert gpu["benchmark"] == "gpu" and any(n.startswith("train test_efficientnet pair") for n in names)
    assert any(n.startswith("train test_resnet pair") for n in names)
    assert any(n.startswith("loader raw store") for n in names) and any(n.startswith("loader jpeg store") for n in names)
    assert any("MTCNN" in n for n in names)
    assert all(r["ratio"] > 0 for r in gpu["rows"] if r["ratio"] is not None)
    hours = next(r for r in gpu["rows"] if r["name"].startswith("paper profile projected GPU-hours"))
    assert "17au_effb4_pretrain" in hours["measured"] and "03_noisy_filter" in hours["measured"]


def test_paper_projection_counts_every_training_run():
    from benchmarks.bench_gpu import MODES, PAPER_IMAGES, paper_runs, project_hours

    runs = paper_runs()
    assert len(runs) == 12 and {r["backbone"] for r in runs} == {"efficientnet_b4", "resnet101"}
    pre = next(r for r in runs if r["name"] == "17au_effb4_pretrain")
    assert pre["train_images"] == PAPER_IMAGES["A"] + PAPER_IMAGES["C"] and pre["epochs"] == 10
    rate = {m: 100.0 for m in MODES} | {"infer_bf16": 400.0}
    hours = project_hours(runs, {"efficientnet_b4": rate, "resnet101": rate}, mtcnn_ips=100.0)
    # one training image at 100 img/s, evaluation at 400 img/s: hours of the plain 17au run by hand
    plain = next(r for r in runs if r["name"] == "17au_effb4_plain")
    expect = plain["epochs"] * (PAPER_IMAGES["A"] / 100 + plain["eval_forwards"] / 400) / 3600
    assert hours["17au_effb4_plain"] == pytest.approx(expect)
    assert hours["03_noisy_filter"] == pytest.approx(PAPER_IMAGES["NOISY"] / 400 / 3600)


def test_gpu_flag_refuses_without_cuda_unless_toy(monkeypatch):
    import torch

    from benchmarks.__main__ import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        main(["--gpu"])


def test_coverage_quick_ends_with_its_coverage_line():
    """bench_coverage.py --quick (about 10 s): the table and, last, ``coverage: min <x>``."""
    import re

    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_coverage", "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"coverage: min [01]\.\d{3}", lines[-1]), lines[-1]
    assert any("DISFA" in line and "fold F1" in line for line in lines)
    from benchmarks import BENCHMARKS
    assert "coverage" in BENCHMARKS


def test_new_interval_covers_where_the_percentile_one_does_not():
    """DISFA-like folds of 9 subjects (rare AUs in few subjects), 25 replications of 3 folds, 400
    resamples (about 10 s): the kit's interval covers the population F1 of the fixed model at least
    0.85 of the time (fold and 3-fold mean); the old percentile interval well below."""
    from benchmarks import bench_coverage as bc

    models = bc.fold_models("DISFA", np.random.default_rng(101))
    case = bc.coverage_case("DISFA", 9, models, reps=25, n_boot=400, seed=7)
    fold, mean = case["coverage"]["fold F1"], case["coverage"]["3-fold mean F1"]
    assert fold["basic expanded"] >= 0.85 and mean["basic expanded"] >= 0.85, (fold, mean)
    assert mean["percentile"] <= mean["basic expanded"] - 0.15, mean


def test_quick_post_training_prints_every_stage_of_every_profile(tmp_path):
    """A toy-size run of the post-training benchmark (06_choose, 07_tables with 4-member chosen
    ensembles, the benchmark table, load_candidates against np.load), so that it cannot rot
    (about a minute of CPU, most of it imports of one process per stage)."""
    out = tmp_path / "figures.json"
    table = _quick_run("post_training", out, 900)
    for profile in ("paper", "bp4d", "affwild2"):
        for stage in ("06_choose", "07_tables"):
            assert any(f"{profile} {stage}: CPU seconds" in line for line in table), (profile, stage)
        assert any(f"{profile}: load_candidates vs np.load" in line for line in table), profile
    assert any("bp4d benchmark: CPU seconds" in line for line in table)
    (res,) = json.loads(out.read_text())["results"]
    assert res["returncode"] == 0 and all(r["ok"] is None or ": load_candidates vs np.load" in r["name"]
                                          for r in res["rows"])     # toy sizes: only the load ratios have a target
    assert any("load_candidates vs np.load + one pd.read_csv of the B index" in line for line in table)
