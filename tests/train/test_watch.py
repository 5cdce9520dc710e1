"""Training you can watch (issue 25.3): TensorBoard scalars beside log.csv,
per logged step and per epoch, the one line when tensorboard is missing, and
the run's ETA in every epoch line."""
from __future__ import annotations

import re

import pytest
import torch

from aulib.train import watch
from aulib.workspace import RunDir
from tiny_workspace import make_workspace, tiny_config


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    torch.set_num_threads(1)
    return make_workspace(tmp_path_factory.mktemp("ws"), n_a=128, n_b=16, n_test=8)


def _scalars(events_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


@pytest.mark.slow
def test_events_beside_the_log_with_step_and_epoch_scalars_and_a_resume_shows_each_step_once(workspace, capsys):
    pytest.importorskip("tensorboard")
    from aulib.train.loop import train

    cfg = tiny_config(workspace, run_name="watched", epochs=3, log_every=1, progress=True, multicrop=False)
    rd = RunDir(train(cfg, stop_after=2))
    rd = RunDir(train(cfg, resume=True))
    assert rd.events.is_dir() and rd.log.exists()
    tags = _scalars(rd.events)
    steps = 128 // 32
    for name in ("step/loss", "step/bce", "step/mv", "step/cr", "step/lr", "memory/rss_peak_mib"):
        assert [s for s, _ in tags[name]] == list(range(1, 3 * steps + 1)), name     # each step once
    assert len(tags["step/img_per_s"]) >= 3 * steps - 3 and all(v > 0 for _, v in tags["step/img_per_s"])
    log = rd.read_log()
    assert [s for s, _ in tags["epoch/B_final"]] == [1, 2, 3]
    assert [v for _, v in tags["epoch/B_final"]] == pytest.approx(log["B_final"].tolist(), abs=1e-6)
    assert [v for _, v in tags["epoch/loss"]] == pytest.approx(log["loss"].tolist(), rel=1e-6)
    assert "epoch/img_per_s" in tags and "epoch/lr" in tags
    assert {t for t in tags if t.startswith("B_final_per_AU/")} == {f"B_final_per_AU/AU{a}" for a in cfg.resolved().aus}
    out = capsys.readouterr().out
    etas = re.findall(r"epoch (\d)/3 .* run (ETA [\d.]+ (?:s|min)|done)", out)
    assert [e for e, _ in etas] == ["1", "2", "3"] and etas[-1][1] == "done", out


@pytest.mark.slow
def test_without_tensorboard_training_says_so_once_and_writes_no_events(workspace, capsys, monkeypatch):
    from aulib.train.loop import train

    monkeypatch.setattr(watch, "tensorboard_available", lambda: False)
    rd = RunDir(train(tiny_config(workspace, run_name="unwatched", epochs=1, progress=True, multicrop=False,
                                  max_train_batches=2)))
    out = capsys.readouterr().out
    assert out.count("TensorBoard logging off: the tensorboard package is not installed") == 1
    assert not rd.events.exists() and rd.log.exists()


def test_step_interval_and_durations():
    assert watch.step_interval(None, 75) == 3 and watch.step_interval(None, 5) == 1
    assert watch.step_interval(0, 75) == 0 and watch.step_interval(10, 75) == 10
    clock = watch.RunClock(last=10)
    clock.epoch_done(30.0)
    clock.epoch_done(50.0)
    assert clock.eta_s(2) == 320.0 and clock.eta_s(10) == 0.0
    assert watch.epoch_line("r", 2, 10, {"loss": 1, "bce": 1, "mv": 0, "B_final": 0.5, "time_s": 40.0},
                            ["mv"], clock.eta_s(2)).endswith("40.0 s  run ETA 5.3 min")
