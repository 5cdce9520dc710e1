"""AU prediction on new photos and video frames with chosen models.

Command line: :mod:`aulib.predict.cli` (``python -m aulib.predict``).

Every face MTCNN finds (not only the largest) is cropped in the style each
chosen run was trained on (5-point ``aligned`` for 17au models, ``box1.5``
for 6au models, at the run's ``img_size``), and each AU is predicted by the
run and checkpoint chosen for it (chosen-model files, docs/layout.md), or by
the chosen linear ensemble, then decided with its chosen threshold
(``prob >= threshold``). Each distinct (run, epoch) checkpoint is loaded
once. Faces of many pictures go through a model in one batch.

Output (:meth:`Predictor.predict_paths`): one row per face with ``image``,
``frame`` and ``time_s`` (video frames; empty for photos), ``face`` (0 = the
largest), ``n_faces``, detection ``score``, box ``x0 y0 x1 y1`` and the 5
landmarks by name (``left_eye_x`` … ``mouth_right_y``, pixels of the picture),
then ``AU01_prob`` … probabilities and ``AU01_c`` … 0/1 decisions for every AU
the models cover, in number order (:mod:`aulib.predict.formats`; the CLI's
``--format openface|fex`` writes the same as OpenFace 2 or py-feat would). A picture without a
face gets one row with ``n_faces = 0`` and empty face, box, probability and
decision columns, so every input picture is accounted for. Inputs that give
no picture (missing, corrupt, not an image, undecodable video) are not rows:
they are listed in the errors table (``image, frame, reason``; the CLI
writes it to ``<out stem>_errors.csv`` beside ``--out`` when there are any,
removing a stale one when there are none, and prints it) and the rest of the
batch goes on.

The data set the chosen models were trained on (:func:`training_dataset`:
the workspace's ``01_data`` stamp, else its generated SynthAU data) is
:attr:`Predictor.datasets`; models trained on SynthAU get a note
(:attr:`Predictor.note`) on every annotated picture, in the results'
``attrs["note"]`` (which :func:`aulib.predict.plot.plot_faces` shows) and in
the printed summary: they have never seen a real face. CLI exit status: 0 every input was read, 1 some
inputs could not be read (results for the others are written), 2 a chosen
file or an argument is wrong (nothing predicted).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from ..aus import AU_NAMES, BUILTIN_CROP, CATALOG
from ..data.faces.columns import BOX_COLUMNS, LANDMARK_COLUMNS as DETECTOR_LANDMARKS
from ..data.faces.align import crop_face
from ..data.faces.detect import detect_all_faces
from ..data.sources.synthau.generate import MARKER as SYNTHAU_MARKER
from ..infer.checkpoints import load_model
from ..infer.sharded import autocast
from ..infer.multicrop import multicrop_probs, run_views
from ..io import read_yaml, write_csv
from ..progress import progress as _progress
from ..runs import read_config, run_aus
from ..select.choose import ChosenModel, load_chosen
from ..select.ensemble import LinearEnsemble
from ..model.distributed import resolve_device
from ..workspace import RunDir, Workspace
from .formats import LANDMARK_COLUMNS, decision_column, prob_column, thresholds_path, thresholds_table, \
    write_predictions
from .inputs import Frame, InputError, annotate, au_label, expand_inputs, iter_frames

META_COLUMNS = ["image", "frame", "time_s", "face", "n_faces", "score", *BOX_COLUMNS, *LANDMARK_COLUMNS]
ERROR_COLUMNS = ["image", "frame", "reason"]
#: The note shown with predictions of models trained on SynthAU.
SYNTHAU_NOTE = ("Models trained on SynthAU (synthetic drawn faces): on real photos these AUs are not "
                "meaningful")


def training_dataset(workspace_root) -> str | None:
    """The data set the models of a workspace were trained on: the ``dataset``
    parameter its ``01_data`` step ran with (the pipeline's stamp,
    :meth:`aulib.workspace.Workspace.stamp`), else ``"synthau"`` when the
    workspace holds generated SynthAU data (``data/synthau.yaml``), else None (unknown)."""
    ws = Workspace(Path(workspace_root), Path(workspace_root) / "results")
    stamp = ws.stamp("01_data")
    if stamp.exists():
        dataset = ((read_yaml(stamp) or {}).get("parameters") or {}).get("dataset")
        if dataset:
            return str(dataset)
    return "synthau" if (ws.data / SYNTHAU_MARKER).exists() else None



# --------------------------------------------------------------------------- chosen models -> plan

@dataclass
class _Part:
    """One checkpoint feeding some AUs of a chosen model.

    ``src``: columns of the checkpoint's output (its run's AUs); ``dst``:
    columns of the chosen model's AUs they fill; ``slot``: ensemble input
    (0 without an ensemble)."""

    run: str
    run_dir: Path
    epoch: int
    crop: tuple[str, int]
    run_aus: tuple[int, ...]
    src: np.ndarray
    dst: np.ndarray
    slot: int


@dataclass
class _Plan:
    path: Path
    chosen: ChosenModel
    parts: list[_Part]
    n_slots: int
    ensemble: LinearEnsemble | None
    multicrop: bool


def _valid_style(style) -> bool:
    return isinstance(style, str) and (style == "aligned" or re.fullmatch(r"box\d+(\.\d+)?", style) is not None)


def _run_info(path: Path, chosen: ChosenModel, name: str, root: Path) -> tuple[Path, tuple[int, ...], tuple[str, int]]:
    """Run folder, its AUs and its crop (style, size); clear errors naming the chosen file."""
    d = chosen.run_dir(name, root)
    if not RunDir(d).config.exists():
        raise FileNotFoundError(
            f"{path}: run {name!r} has no {RunDir(d).config}. 'dir' entries are relative to the workspace "
            f"{root}; if the chosen file was moved out of <workspace>/chosen/, pass workspace=... (--workspace DIR), "
            "else rerun notebooks/06_choose.ipynb on the runs you have")
    cfg = read_config(d)
    entry = chosen.runs[name]
    # the run's config is what the model was trained on; the chosen file's copy is only a summary
    style = cfg.get("crop_style") or entry.get("crop_style") or BUILTIN_CROP.get(cfg.get("group"), "aligned")
    size = cfg.get("img_size") or entry.get("img_size")
    if not _valid_style(style):
        raise ValueError(f"{path}: run {name!r} has crop_style {style!r}; expected 'aligned' or 'box<scale>' "
                         "such as 'box1.5'")
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise ValueError(f"{path}: run {name!r} has img_size {size!r}; expected an integer number of pixels")
    for key, mine in (("crop_style", style), ("img_size", size)):
        if entry.get(key) is not None and entry.get(key) != mine:
            warnings.warn(f"{path}: run {name!r} lists {key} {entry.get(key)!r} but its config.yaml says {mine!r}; "
                          f"using {mine!r}, what the run was trained on", stacklevel=3)
    return d, tuple(run_aus(cfg, d)), (style, int(size))


def _checkpoint(path: Path, run: str, run_dir: Path, epoch: int, aus) -> None:
    rd = RunDir(run_dir)
    ckpt = rd.checkpoint(epoch)
    if not ckpt.exists():
        have = rd.checkpoint_epochs()
        raise FileNotFoundError(
            f"{path}: AU {', '.join(map(str, aus))} use(s) checkpoint {ckpt} (run {run}, epoch {epoch}), which is "
            f"missing (the run has checkpoints for epochs {have}). Rerun notebooks/06_choose.ipynb so it picks kept "
            "epochs, or retrain the run with keep_checkpoints: all")


def plan_chosen(path, workspace_root=None, multicrop: bool = False) -> _Plan:
    """Read a chosen-model file and work out which checkpoint predicts which
    AU on which crop. Checks run folders, checkpoints and AU coverage."""
    path = Path(path)
    chosen = load_chosen(path, workspace_root, check_files=False)
    root = Path(workspace_root) if workspace_root is not None else path.resolve().parent.parent
    info: dict[str, tuple] = {}   # run name -> (folder, AUs, crop), read once per run
    aus = list(chosen.aus)
    ens = LinearEnsemble.from_dict(chosen.ensemble) if chosen.ensemble else None
    if ens is not None:
        if ens.aus and list(ens.aus) != aus:
            raise ValueError(f"{path}: the ensemble is over AUs {list(ens.aus)}, the file's AUs are {aus}")
        slot_runs = list(ens.runs)
        epochs = ens.epochs if ens.epochs is not None else np.array([[p["epoch"]] * len(slot_runs)
                                                                    for p in chosen.per_au])
        if ens.multicrop != multicrop:
            warnings.warn(f"{path}: the ensemble was fitted on {'multi-crop' if ens.multicrop else 'single-crop'} "
                          "probabilities; predicting the same way", stacklevel=2)
        multicrop = ens.multicrop
    else:
        slot_runs = [None]
        epochs = None
    parts = []
    for slot, run in enumerate(slot_runs):
        if ens is not None:
            col_run = [run] * len(aus)
            col_epoch = [int(e) for e in epochs[:, slot]]
        else:
            col_run = [p["run"] for p in chosen.per_au]
            col_epoch = [int(p["epoch"]) for p in chosen.per_au]
        for r, e in dict.fromkeys(zip(col_run, col_epoch)):
            if r not in info:
                info[r] = _run_info(path, chosen, r, root)
            run_dir, run_aus, crop = info[r]
            dst = np.array([j for j in range(len(aus)) if col_run[j] == r and col_epoch[j] == e])
            missing = [aus[j] for j in dst if aus[j] not in run_aus]
            if missing:
                raise ValueError(f"{path}: run {r!r} predicts AUs {list(run_aus)}, not AUs {missing} that the file "
                                 "takes from it; the run belongs to another group. Rerun notebooks/06_choose.ipynb")
            _checkpoint(path, r, run_dir, e, [aus[j] for j in dst])
            src = np.array([run_aus.index(aus[j]) for j in dst])
            parts.append(_Part(r, run_dir, e, crop, run_aus, src, dst, slot))
    return _Plan(path, chosen, parts, len(slot_runs), ens, multicrop)


# --------------------------------------------------------------------------- predictor

class Predictor:
    """AU probabilities and decisions for faces in new pictures.

    ``chosen_paths``: one chosen-model YAML per group (e.g. ``17au.yaml`` and
    ``6au.yaml``); no AU may be covered twice. ``workspace``: the workspace
    (or its root folder) the files' run ``dir`` entries are relative to;
    default: the folder above each file's ``chosen/``. ``device``: ``auto``
    (GPU when present), ``cpu``, ``cuda:0`` ... ``multicrop``: average each
    checkpoint over the multi-crop views (:mod:`aulib.infer.multicrop`); an ensemble
    always uses the inputs it was fitted on. ``batch_size``: faces per
    forward pass; ``chunk_size``: pictures detected and predicted together.
    """

    def __init__(self, chosen_paths, workspace=None, device: str = "auto", multicrop: bool = False,
                 batch_size: int = 32, chunk_size: int = 64, detect_batch_size: int = 16,
                 max_side: int | None = 1024, progress: bool = True):
        if isinstance(chosen_paths, (str, Path)):
            chosen_paths = [chosen_paths]
        if not chosen_paths:
            raise ValueError("give at least one chosen-model file (e.g. <workspace>/chosen/17au.yaml)")
        if batch_size < 1 or chunk_size < 1:
            raise ValueError(f"batch_size and chunk_size must be >= 1, got {batch_size} and {chunk_size}")
        root = workspace.root if isinstance(workspace, Workspace) else workspace
        self.plans = [plan_chosen(p, root, multicrop) for p in chosen_paths]
        #: chosen file -> the data set its models were trained on (None: unknown)
        self.datasets = {plan.path: training_dataset(root if root is not None else plan.path.resolve().parent.parent)
                         for plan in self.plans}
        owner: dict[int, Path] = {}
        for plan in self.plans:
            twice = [a for a in plan.chosen.aus if a in owner]
            if twice:
                raise ValueError(f"{plan.path} and {owner[twice[0]]} both cover AUs {twice}; give one chosen-model "
                                 "file per group (e.g. chosen/17au.yaml and chosen/6au.yaml), not overlapping groups")
            owner.update({a: plan.path for a in plan.chosen.aus})
        order = {a: i for i, a in enumerate(CATALOG)}
        self.aus: tuple[int, ...] = tuple(sorted(owner, key=lambda a: (order.get(a, len(order)), a)))
        self._col = {a: i for i, a in enumerate(self.aus)}
        thr = {p["au"]: p["threshold"] for plan in self.plans for p in plan.chosen.per_au}
        self.thresholds = pd.Series([thr[a] for a in self.aus], index=pd.Index(self.aus, name="au"),
                                    name="threshold", dtype=np.float64)
        self.crops: list[tuple[str, int]] = list(dict.fromkeys(p.crop for plan in self.plans for p in plan.parts))
        self.device = resolve_device(device)
        self.batch_size, self.chunk_size = int(batch_size), int(chunk_size)
        self.detect_batch_size, self.max_side, self.progress = int(detect_batch_size), max_side, progress
        self._models: dict[tuple[Path, int], object] = {}
        for plan in self.plans:
            for part in plan.parts:
                self._model(part)

    @property
    def note(self) -> str | None:
        """:data:`SYNTHAU_NOTE` when a chosen model was trained on SynthAU, else None."""
        return SYNTHAU_NOTE if "synthau" in self.datasets.values() else None

    def _model(self, part: _Part):
        """The checkpoint of a part, loaded once and kept on the device."""
        key = (part.run_dir.resolve(), part.epoch)
        if key not in self._models:
            self._models[key] = load_model(part.run_dir, part.epoch, map_location=self.device).eval()
        return self._models[key]

    @property
    def columns(self) -> list[str]:
        """Output columns: meta, then ``AU01_prob`` …, then ``AU01_c`` …"""
        return META_COLUMNS + [prob_column(a) for a in self.aus] + [decision_column(a) for a in self.aus]

    # ----------------------------------------------------------------------- faces -> probabilities

    def _checkpoint_probs(self, part: _Part, x: np.ndarray, multicrop: bool) -> np.ndarray:
        """(N, C_run) float32 probabilities of a checkpoint on uint8 crops (N, S, S, 3)."""
        model = self._model(part)
        views = run_views(read_config(part.run_dir)) if multicrop else None   # the views its training produced
        out = []
        with torch.inference_mode(), autocast(self.device):
            for s in range(0, len(x), self.batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x[s:s + self.batch_size])).permute(0, 3, 1, 2)
                xb = xb.to(self.device, non_blocking=True)
                p = multicrop_probs(model, xb, part.run_aus, views) if multicrop else model.probs(xb)
                out.append(p.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(part.run_aus)), np.float32)

    def predict_crops(self, crops: dict[tuple[str, int], np.ndarray]) -> np.ndarray:
        """Probabilities float32 (N, A) over :attr:`aus` for N faces given as
        uint8 crops ``(N, S, S, 3)`` per (style, size) of :attr:`crops`."""
        n = len(next(iter(crops.values()))) if crops else 0
        probs = np.full((n, len(self.aus)), np.nan, np.float32)
        if n == 0:
            return probs
        cache: dict[tuple, np.ndarray] = {}
        for plan in self.plans:
            slots = np.full((plan.n_slots, n, len(plan.chosen.aus)), np.nan, np.float32)
            for part in plan.parts:
                key = (part.run_dir.resolve(), part.epoch, plan.multicrop)
                if key not in cache:
                    cache[key] = self._checkpoint_probs(part, crops[part.crop], plan.multicrop)
                slots[part.slot][:, part.dst] = cache[key][:, part.src]
            p = plan.ensemble.predict(list(slots)) if plan.ensemble is not None else slots[0]
            probs[:, [self._col[a] for a in plan.chosen.aus]] = p
        return probs

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """0/1 int8 decisions (N, A): ``prob >= threshold`` per AU."""
        return (np.asarray(probs) >= self.thresholds.to_numpy()[None, :]).astype(np.int8)

    # ----------------------------------------------------------------------- pictures -> table

    def _process(self, frames: list[Frame], annotate_dir, names: dict) -> tuple[list[dict], np.ndarray]:
        faces = detect_all_faces([f.image for f in frames], device=str(self.device),
                                 batch_size=self.detect_batch_size, max_side=self.max_side)
        flat = [(i, k, face) for i, fs in enumerate(faces) for k, face in enumerate(fs)]
        crops = {}
        for style, size in self.crops:
            arr = np.empty((len(flat), size, size, 3), np.uint8)
            for j, (i, _, face) in enumerate(flat):
                arr[j] = crop_face(frames[i].image, {**face, "n_faces": 1}, style, size)[0]
            crops[(style, size)] = arr
        probs = self.predict_crops(crops)
        decisions = self.decide(probs)
        rows, row_probs, j = [], [], 0
        empty = np.full(len(self.aus), np.nan, np.float32)
        for i, fr in enumerate(frames):
            base = {"image": fr.source, "frame": fr.frame, "time_s": fr.time_s, "n_faces": len(faces[i])}
            drawn = []
            if not faces[i]:
                rows.append(base)
                row_probs.append(empty)
            for k, face in enumerate(faces[i]):
                rows.append({**base, "face": k, **{c: face[c] for c in ("score", *BOX_COLUMNS)},
                             **dict(zip(LANDMARK_COLUMNS, (face[c] for c in DETECTOR_LANDMARKS)))})
                row_probs.append(probs[j])
                on = decisions[j].astype(bool)
                active = [a for a, d in zip(self.aus, on) if d]
                drawn.append({**face, "label": au_label(k, active, probs[j][on].tolist())})
                j += 1
            if annotate_dir is not None:
                annotate(fr.image, drawn, Path(annotate_dir) / _annotation_name(fr, names), note=self.note)
        return rows, (np.stack(row_probs) if row_probs else np.zeros((0, len(self.aus)), np.float32))

    def _run(self, items: Sequence, errors: list[InputError], video_fps, annotate_dir,
             relative_to=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows, probs, chunk, names = [], [], [], {}
        errors = list(errors)
        bar = _progress(total=len(items), desc="predict", unit="file", disable=not self.progress)
        last = None

        def flush():
            if chunk:
                r, p = self._process(chunk, annotate_dir, names)
                rows.extend(r)
                probs.append(p)
                chunk.clear()

        for item in iter_frames(items, video_fps):
            if item.source != last:
                bar.update(0 if last is None else 1)
                last = item.source
            if isinstance(item, InputError):
                errors.append(item)
                continue
            chunk.append(item)
            if len(chunk) >= self.chunk_size:
                flush()
        flush()
        bar.update(bar.total - bar.n)
        bar.close()
        results, errors = self._table(rows, probs), errors_table(errors)
        if relative_to is not None:
            for df in (results, errors):
                df["image"] = [_relative(s, relative_to) for s in df["image"]]
        return results, errors

    def _table(self, rows: list[dict], probs: list[np.ndarray]) -> pd.DataFrame:
        meta = pd.DataFrame(rows, columns=META_COLUMNS)
        meta = meta.astype({"frame": "Int64", "face": "Int64", "n_faces": "int64", "time_s": "float64",
                            "score": "float64", **{c: "float64" for c in BOX_COLUMNS + LANDMARK_COLUMNS}})
        p = np.concatenate(probs) if probs else np.zeros((0, len(self.aus)), np.float32)
        prob_df = pd.DataFrame(p, columns=[prob_column(a) for a in self.aus])
        dec = pd.DataFrame(self.decide(p), columns=[decision_column(a) for a in self.aus]).astype("Int8")
        dec[np.isnan(p)] = pd.NA
        df = pd.concat([meta, prob_df, dec], axis=1)
        df.attrs["thresholds"] = self.thresholds.to_dict()
        df.attrs["note"] = self.note
        return df

    def table(self) -> pd.DataFrame:
        """Per AU: the chosen file, run, epoch(s), crop and threshold used."""
        rows = []
        for plan in self.plans:
            for j, a in enumerate(plan.chosen.aus):
                used = [p for p in plan.parts if j in p.dst]
                rows.append({"au": a, "name": AU_NAMES.get(a, ""), "group": plan.chosen.group,
                             "run": "+".join(p.run for p in used), "epoch": "+".join(str(p.epoch) for p in used),
                             "crop": "+".join(f"{p.crop[0]}_{p.crop[1]}" for p in used),
                             "ensemble": plan.ensemble is not None, "multicrop": plan.multicrop,
                             "threshold": float(self.thresholds[a]), "file": str(plan.path)})
        return pd.DataFrame(rows).set_index("au").loc[list(self.aus)]

    def predict_images(self, images: Sequence, annotate_dir=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Predict on image files and/or RGB arrays (H, W, 3); a video file is
        sampled at 2 frames per second. Returns ``(results, errors)`` (module
        docstring); arrays are named ``array[i]`` in the ``image`` column."""
        return self._run(list(images), [], 2.0, annotate_dir)

    def predict_paths(self, inputs: Iterable, video_fps: float | None = 2.0, annotate_dir=None,
                      relative_to=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Predict on files and folders (searched recursively for images and
        videos); videos sampled at ``video_fps`` frames per second (None:
        every frame). ``annotate_dir``: also write each picture with boxes and
        active AUs drawn. ``relative_to``: a folder; files inside it are named
        by their POSIX path relative to it in the ``image`` column (else as
        given). Returns ``(results, errors)``."""
        items, errors = expand_inputs(inputs)
        return self._run(items, errors, video_fps, annotate_dir, relative_to)


    def predict_to_csv(self, inputs: Iterable, out_csv=None, annotate_dir=None, video_fps: float | None = 2.0,
                       relative_to=None, verbose: bool = True, fmt: str = "aulib") -> tuple[pd.DataFrame, pd.DataFrame]:
        """:meth:`predict_paths`, then write ``out_csv`` in format ``fmt``
        (``aulib``, ``openface`` or ``fex``: :mod:`aulib.predict.formats`), the
        thresholds used beside it (:func:`~aulib.predict.formats.thresholds_path`)
        and, when an input failed, its errors table (:func:`errors_path`; a
        stale one is removed when nothing failed), and print a summary.
        Returns ``(results, errors)`` (the kit's table)."""
        results, errors = self.predict_paths(inputs, video_fps=video_fps, annotate_dir=annotate_dir,
                                             relative_to=relative_to)
        if out_csv is not None:
            write_predictions(results, out_csv, fmt)
            write_csv(thresholds_path(out_csv), thresholds_table(self.table()))
            if len(errors):
                write_csv(errors_path(out_csv), errors)
            else:
                errors_path(out_csv).unlink(missing_ok=True)     # an old run's errors are not this run's
        if verbose:
            print(summarize_predictions(results, errors))
            if self.note:
                print(f"note: {self.note}")
            if out_csv is not None:
                print(f"wrote {out_csv} ({len(results)} rows)" + (f" and {errors_path(out_csv)}" if len(errors) else ""))
        return results, errors


def _relative(source: str, folder) -> str:
    """``source`` relative to ``folder`` (POSIX) when inside it, else unchanged."""
    try:
        return Path(source).resolve().relative_to(Path(folder).resolve()).as_posix()
    except (ValueError, OSError):
        return source


#: Picture formats an annotated picture keeps (others are written as ``<stem>_<ext>.png``).
KEPT_SUFFIXES = (".jpg", ".jpeg", ".png")


def _annotation_name(fr: Frame, names: dict) -> str:
    """Unique file name per input: a photo keeps its name and extension
    (``a.png``, ``a.jpg``; ``a_bmp.png`` for other formats; ``a_2.png`` when
    two folders hold an ``a.png``); video frames ``<stem>_frame<NNNNNN>.jpg``."""
    if fr.source not in names:
        path = Path(fr.source)
        stem = re.sub(r"[^\w.-]+", "_", path.stem) or "image"
        ext = path.suffix.lower()
        if fr.frame is not None:
            suffix = ".jpg"
        elif ext in KEPT_SUFFIXES:
            suffix = ext
        else:
            suffix, stem = ".png", f"{stem}_{ext[1:]}" if re.fullmatch(r"\.\w+", ext) else stem
        taken = set(names.values())
        name, k = stem, 1
        while (name, suffix) in taken:
            k += 1
            name = f"{stem}_{k}"
        names[fr.source] = (name, suffix)
    base, suffix = names[fr.source]
    return f"{base}_frame{fr.frame:06d}{suffix}" if fr.frame is not None else f"{base}{suffix}"


def errors_table(errors: Sequence[InputError]) -> pd.DataFrame:
    """Errors as a table: ``image, frame, reason``."""
    df = pd.DataFrame([{"image": e.source, "frame": e.frame, "reason": e.reason} for e in errors],
                      columns=ERROR_COLUMNS)
    return df.astype({"frame": "Int64"})


def errors_path(out_csv) -> Path:
    """Where the errors of ``out_csv`` go: ``<stem>_errors.csv`` beside it."""
    out_csv = Path(out_csv)
    return out_csv.with_name(f"{out_csv.stem}_errors.csv")


def summarize_predictions(results: pd.DataFrame, errors: pd.DataFrame) -> str:
    """A few lines: pictures, faces, pictures without a face, errors."""
    pictures = results.drop_duplicates(["image", "frame"])
    n_faces = int((results["n_faces"] > 0).sum())
    no_face = pictures[pictures["n_faces"] == 0]
    lines = [f"{len(pictures)} pictures, {n_faces} faces, {len(no_face)} pictures without a face, "
             f"{len(errors)} unreadable inputs"]
    for r in no_face.head(10).itertuples():
        lines.append(f"  no face: {r.image}" + ("" if pd.isna(r.frame) else f" frame {r.frame}"))
    for r in errors.itertuples():
        lines.append(f"  error: {r.image}" + ("" if pd.isna(r.frame) else f" frame {r.frame}") + f": {r.reason}")
    return "\n".join(lines)


def available_chosen(ws: Workspace, groups: Sequence[str]) -> list[Path]:
    """The chosen-model files ``ws.chosen(g)`` of ``groups`` that exist; a
    warning names the missing ones, an error is raised when none exists."""
    paths = [ws.chosen(g) for g in groups]
    have = [p for p in paths if p.exists()]
    missing = [str(p) for p in paths if not p.exists()]
    if not have:
        raise FileNotFoundError(f"no chosen-model file for groups {list(groups)} in {ws.root / 'chosen'}; "
                                "run notebooks/06_choose.ipynb for each group first")
    if missing:
        warnings.warn(f"no chosen model for {missing}; predicting without those groups "
                      "(run notebooks/06_choose.ipynb to make them)", stacklevel=2)
    return have


def predict_files(inputs: Iterable, models: Sequence, out_csv=None, annotate_dir=None, video_fps: float | None = 2.0,
                  workspace=None, device: str = "auto", batch_size: int = 32, multicrop: bool = False,
                  progress: bool = True, verbose: bool = True, fmt: str = "aulib") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build a :class:`Predictor` from chosen-model files ``models``, predict
    on ``inputs`` (files/folders/videos), write ``out_csv`` in format ``fmt``
    with its thresholds and, when an input failed, its errors table
    (:meth:`Predictor.predict_to_csv`) and print a summary. Returns ``(results, errors)``."""
    predictor = Predictor(models, workspace=workspace, device=device, multicrop=multicrop,
                          batch_size=batch_size, progress=progress)
    return predictor.predict_to_csv(inputs, out_csv, annotate_dir, video_fps, verbose=verbose, fmt=fmt)


def read_predictions(path) -> pd.DataFrame:
    """Read a predictions CSV the kit wrote in its own format (nullable ints kept)."""
    df = pd.read_csv(path)
    ints = {c: "Int64" for c in ("frame", "face")} | {c: "Int8" for c in df.columns if re.fullmatch(r"AU\d+_c", c)}
    return df.astype({c: t for c, t in ints.items() if c in df.columns})


__all__ = ["Predictor", "plan_chosen", "training_dataset", "SYNTHAU_NOTE", "predict_files", "available_chosen",
           "read_predictions", "errors_table", "errors_path", "summarize_predictions", "resolve_device", "META_COLUMNS",
           "ERROR_COLUMNS"]
