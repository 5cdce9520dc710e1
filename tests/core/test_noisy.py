"""Noisy-label filtering: the paper's rule, scoring, chunked/sharded prediction."""
import numpy as np
import pandas as pd
import pytest

from aulib.aus import au_columns
from aulib.noisy import filter_noisy, predict_in_chunks, score_filter


def _table(labels, aus, images=None):
    labels = np.asarray(labels)
    df = pd.DataFrame({"image": images or [f"n/{i}.jpg" for i in range(len(labels))], "variant": 0})
    for j, c in enumerate(au_columns(aus)):
        df[c] = labels[:, j].astype(np.int8)
    return df


def test_filter_rule_hand_made():
    aus = [1, 2]
    noisy = _table([[1, 0],     # AU1: agree + confident -> kept;   AU2: agree + confident -> kept
                    [1, 0],     # AU1: disagree -> dropped;          AU2: disagree -> dropped
                    [1, 0],     # AU1: agree, not confident;         AU2: agree, not confident
                    [-1, 1],    # AU1: unknown stays unknown;        AU2: agree + confident
                    [0, -1]],   # AU1: agree + confident (p <= 0.3); AU2 unknown
                   aus)
    noisy["AU4"], noisy["AU56"] = np.int8(1), np.int8(0)                  # labelled, but outside the group
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.99, 0.75], [0.3, 0.01]])
    out = filter_noisy(noisy, probs, aus, threshold=0.5, confidence=0.7)
    assert list(out.columns) == ["image", "variant"] + au_columns([1, 2, 4, 56])   # the noisy table's AU columns
    assert out["image"].tolist() == ["n/0.jpg", "n/3.jpg", "n/4.jpg"]      # rows 1 and 2 lost every label
    np.testing.assert_array_equal(out[au_columns(aus)].to_numpy(), [[1, 0], [-1, 1], [0, -1]])
    assert (out[au_columns([4, 56])].to_numpy() == -1).all()                # AUs outside the group: unknown


def test_filter_per_au_threshold_and_confidence_edges():
    aus = [1, 2]
    noisy = _table([[1, 1], [0, 0]], aus)
    probs = np.array([[0.7, 0.7], [0.3, 0.25]])
    # AU2's decision threshold 0.8: p=0.7 says "absent", so label 1 disagrees; p=0.25 < 0.8 agrees with 0
    out = filter_noisy(noisy, probs, aus, threshold=[0.5, 0.8], confidence=0.7)
    np.testing.assert_array_equal(out[au_columns(aus)].to_numpy(), [[1, -1], [0, 0]])
    with pytest.raises(ValueError, match="confidence"):
        filter_noisy(noisy, probs, aus, confidence=0.3)
    with pytest.raises(ValueError, match="shape"):
        filter_noisy(noisy, probs[:1], aus)


def test_score_filter_hand_made():
    aus = [1, 2]
    before = _table([[1, 0], [1, 1], [0, 0], [0, -1]], aus)
    true = _table([[1, 0], [0, 1], [0, 1], [0, 0]], aus)
    after = before.iloc[[0, 1, 3]].copy()
    after.loc[1, "AU1"] = -1          # the wrong AU1 label of image 1 was filtered out
    rep = score_filter(before, after, true, aus)
    assert rep.loc["AU1", "labels_before"] == 4 and rep.loc["AU1", "labels_after"] == 2
    assert rep.loc["AU1", "acc_before"] == pytest.approx(3 / 4)
    assert rep.loc["AU1", "acc_after"] == pytest.approx(1.0)
    assert rep.loc["AU2", "acc_before"] == pytest.approx(2 / 3)      # image 2's AU2 wrong
    assert rep.loc["AU2", "acc_after"] == pytest.approx(1.0)
    assert rep.loc["mean", "acc_before"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert rep.loc["images", "labels_before"] == 4 and rep.loc["images", "labels_after"] == 3
    no_truth = score_filter(before, after, None, aus)
    assert no_truth["acc_after"].isna().all() and no_truth.loc["AU2", "labels_after"] == 2


def _class_case():
    """Noisy split, C and truth by hand: C keeps fewer true positives than negatives."""
    aus = [1, 2, 4]
    #                 AU1  AU2  AU4
    before = _table([[1,   1,   1],      # n/0
                     [1,   0,   0],      # n/1
                     [0,   0,   0],      # n/2
                     [0,   0,   1],      # n/3
                     [1,  -1,   0],      # n/4
                     [0,   1,   1]],     # n/5: no label survives, the image is not in C
                    aus)
    true = _table([[1, 1, -1], [1, 1, -1], [1, 0, -1], [0, 0, -1], [0, 0, -1], [0, -1, -1]], aus)
    # C in another row order than the noisy split; a label is kept (as in the noisy list) or -1
    after = _table([[1, -1, -1],         # n/4: AU1 a wrong positive kept
                    [0, 0, -1],          # n/3
                    [0, 0, 0],           # n/2: AU1 a wrong negative kept, AU2 right
                    [-1, 0, -1],         # n/1: AU1 a right positive dropped, AU2 a wrong negative kept
                    [1, -1, 1]],         # n/0: AU2 a right positive dropped
                   aus, images=["n/4.jpg", "n/3.jpg", "n/2.jpg", "n/1.jpg", "n/0.jpg"])
    return before, after, true, aus


def test_score_filter_shows_which_class_survives():
    """Shares of the true positives / negatives that C keeps right or turns
    wrong, and the prevalence before, after and true (hand-made, truth known)."""
    before, after, true, aus = _class_case()
    rep = score_filter(before, after, true, aus)
    assert list(rep.columns) == ["labels_before", "labels_after", "kept", "pos_before", "pos_after",
                                 "acc_before", "acc_after", "prev_before", "prev_after", "prev_true",
                                 "true_pos_kept", "true_neg_kept", "true_pos_as_neg", "true_neg_as_pos"]
    # AU1: true positives n/0 (C 1), n/1 (C -1), n/2 (C 0); true negatives n/3 (C 0), n/4 (C 1), n/5 (not in C)
    au1 = rep.loc["AU1"]
    assert au1["true_pos_kept"] == pytest.approx(1 / 3) and au1["true_pos_as_neg"] == pytest.approx(1 / 3)
    assert au1["true_neg_kept"] == pytest.approx(1 / 3) and au1["true_neg_as_pos"] == pytest.approx(1 / 3)
    assert (au1["prev_before"], au1["prev_after"], au1["prev_true"]) == pytest.approx((3 / 6, 2 / 4, 3 / 6))
    # AU2: true positives n/0 (C -1), n/1 (C 0); true negatives n/2, n/3 (C 0), n/4 (noisy and C -1);
    # n/5's truth unknown: C keeps no positive, its prevalence falls from 2/5 to 0 against a true 2/5
    au2 = rep.loc["AU2"]
    assert au2["true_pos_kept"] == 0 and au2["true_pos_as_neg"] == pytest.approx(1 / 2)
    assert au2["true_neg_kept"] == pytest.approx(2 / 3) and au2["true_neg_as_pos"] == 0
    assert (au2["prev_before"], au2["prev_after"], au2["prev_true"]) == pytest.approx((2 / 5, 0, 2 / 5))
    assert au2["acc_before"] == pytest.approx(3 / 4) and au2["acc_after"] == pytest.approx(2 / 3)
    # AU4: no truth: the truth columns are NaN, the prevalences of the labels are not
    au4 = rep.loc["AU4"]
    assert au4[["prev_true", "true_pos_kept", "true_neg_kept", "true_pos_as_neg", "true_neg_as_pos"]].isna().all()
    assert (au4["prev_before"], au4["prev_after"]) == pytest.approx((3 / 6, 1 / 2))
    # mean row: every rate averaged over the AUs that have it; counts summed
    m = rep.loc["mean"]
    assert m["true_pos_kept"] == pytest.approx((1 / 3 + 0) / 2)
    assert m["true_neg_kept"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert m["true_pos_as_neg"] == pytest.approx((1 / 3 + 1 / 2) / 2) and m["true_neg_as_pos"] == pytest.approx(1 / 6)
    assert m["prev_true"] == pytest.approx((1 / 2 + 2 / 5) / 2)
    assert m["prev_before"] == pytest.approx((1 / 2 + 2 / 5 + 1 / 2) / 3)
    assert m["prev_after"] == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    assert m["pos_after"] == 2 + 0 + 1 and m["labels_after"] == 4 + 3 + 2
    assert rep.loc["images"].iloc[7:].isna().all() and rep.loc["images", "labels_after"] == 5
    # without truth: the label prevalences only
    no_truth = score_filter(before, after, None, aus)
    assert no_truth.loc["AU2", "prev_after"] == 0 and no_truth["true_pos_kept"].isna().all()
    assert no_truth["prev_true"].isna().all()


def test_results_readme_says_when_the_filter_shifts_c_toward_negatives(tmp_path):
    from aulib.io import write_csv
    from aulib.report.summary import noisy_filter_sentence, write_results_readme
    from aulib.workspace import Workspace

    before, after, true, aus = _class_case()
    ws = Workspace(tmp_path / "ws", tmp_path / "results")
    write_csv(ws.tables / "noisy_filter_17au.csv", score_filter(before, after, true, aus).reset_index())
    text = write_results_readme(ws, "demo").read_text()
    section = text.split("## Noisy-label filtering (dataset C)")[1]
    assert "`true_pos_kept`" in section and "`prev_true`" in section          # the columns explained
    # means over AU1 and AU2, the AUs with truth: C 0.25 positive against a true 0.45
    assert ("**The filter shifts C toward negatives**: it keeps 17 % of the true positives as positives against "
            "50 % of the true negatives as negatives (42 % of the true positives become wrong negatives), so C's "
            "labels are 0.250 positive against a true 0.450 (the noisy labels: 0.450; means over the 2 AUs with "
            "true labels). C keeps under 5 % of the true positives of AU2 (0.0 %). Label accuracy (0.708 before "
            "filtering, 0.583 after)") in section
    head = next(ln for ln in section.splitlines() if ln.startswith("| au |"))
    assert "| prev_before | prev_after | prev_true | true_pos_kept | true_neg_kept | true_pos_as_neg |" in head
    assert "| AU2 | 5 | 3 | 0.6000 | 2 | 0 | 0.7500 | 0.6667 | 0.4000 | 0.0000 | 0.4000 | 0.0000 | 0.6667 |" in section
    assert "**6au**" not in section                                          # no 6au table written
    # a filter that keeps every right label and drops every wrong one keeps the true prevalence
    right = true.copy()
    right.loc[5, "AU2"] = 1
    fair = noisy_filter_sentence(score_filter(right, right, right, aus))
    assert fair.startswith("The filter keeps C's prevalence near the truth") and "toward" not in fair
    blind = noisy_filter_sentence(score_filter(before, after, None, aus))
    assert blind.startswith("Without the noisy images' true labels")
    old = score_filter(before, after, true, aus).drop(columns=["prev_true", "true_pos_kept"])
    assert "rerun notebook 03" in noisy_filter_sentence(old)


def test_score_filter_rejects_a_c_that_is_not_a_subset():
    aus = [1]
    before = _table([[1], [0]], aus)
    true = _table([[1], [0], [1]], aus, images=["n/0.jpg", "n/1.jpg", "other.jpg"])
    with pytest.raises(ValueError, match="noisy split lacks"):
        score_filter(before, _table([[1]], aus, images=["other.jpg"]), true, aus)
    with pytest.raises(ValueError, match="duplicate"):
        score_filter(before, _table([[1], [1]], aus, images=["n/0.jpg", "n/0.jpg"]), true, aus)


def _fake(calls):
    def predict_rows(rows):
        calls.append(int(rows[0]))
        return np.stack([rows * 0.001, np.full(len(rows), 0.5)], axis=1)
    return predict_rows


def test_chunked_prediction_sharded_assembles_in_order(tmp_path):
    calls = []
    for rank in (2, 1):                       # other ranks finish first, each its own chunks
        assert predict_in_chunks(30, 2, _fake(calls), tmp_path, chunk_rows=7, shard=(rank, 3)) is None
    assert sorted(calls) == [7, 14, 28]        # rank 1: chunks 1, 4; rank 2: chunk 2
    out = predict_in_chunks(30, 2, _fake(calls), tmp_path, chunk_rows=7, shard=(0, 3))
    assert sorted(calls) == [0, 7, 14, 21, 28]
    np.testing.assert_allclose(out[:, 0], np.arange(30) * 0.001, atol=1e-3)   # float16 chunks, row order kept
    assert out.shape == (30, 2) and out.dtype == np.float32


def test_chunked_prediction_resumes_after_interruption(tmp_path):
    calls = []
    fake = _fake(calls)

    def dies_at_row_14(rows):
        if rows[0] == 14:
            raise KeyboardInterrupt
        return fake(rows)

    with pytest.raises(KeyboardInterrupt):
        predict_in_chunks(30, 2, dies_at_row_14, tmp_path, chunk_rows=7)
    assert calls == [0, 7]
    calls.clear()
    out = predict_in_chunks(30, 2, fake, tmp_path, chunk_rows=7)
    assert calls == [14, 21, 28]               # finished chunks were not predicted again
    np.testing.assert_allclose(out[:, 0], np.arange(30) * 0.001, atol=1e-3)
    calls.clear()
    predict_in_chunks(30, 2, fake, tmp_path, chunk_rows=7, resume=False)
    assert calls == [0, 7, 14, 21, 28]
    with pytest.raises(ValueError, match="another job"):
        predict_in_chunks(31, 2, fake, tmp_path, chunk_rows=7)


def test_rank0_reports_missing_chunks(tmp_path):
    with pytest.raises(RuntimeError, match="not predicted yet"):
        predict_in_chunks(30, 2, _fake([]), tmp_path, chunk_rows=7, shard=(0, 2))


def test_base_model_scores_the_kits_heldout_split_h_before_synthaus_test(tmp_path, monkeypatch):
    """The base run (Table 1's Baseline) logs the held-out split every 04_train run
    of the profile scores: H when the workspace has it, even beside SynthAU's test."""
    from aulib import noisy as N
    from aulib.workspace import Workspace

    ws = Workspace.for_profile("t", root=tmp_path)
    seen = {}
    monkeypatch.setattr(N, "train", lambda cfg, resume: seen.setdefault("heldout", cfg.heldout) and tmp_path)
    for split in ("test", "H"):
        ws.split(split).parent.mkdir(parents=True, exist_ok=True)
        ws.split(split).write_text("image,variant\n")
    N.base_model(ws, "17au", epochs=1)
    assert seen["heldout"] == "H"
    ws.split("H").unlink()
    seen.clear()
    N.base_model(ws, "17au", epochs=1)
    assert seen["heldout"] == "test"
