"""Torch Dataset and DataLoader over a crop store and a split file.

An item is ``(uint8 (3, S, S), int8 (C,))``: the crop of a split row (degraded
with :func:`aulib.data.transforms.degrade` when its ``variant`` > 0) and its
labels over the group's AUs (1 / 0 / -1 unknown). :func:`make_loader` yields
whole batches ``(uint8 (B, 3, S, S), int8 (B, C))``, each read from the
memory-mapped store with one sorted fancy-indexed read. Augmentation is not
done here: the training step calls :func:`aulib.data.transforms.augment_batch`
on the device the batch lands on.

Shuffling: call :func:`set_epoch` (``loader.sampler.set_epoch``) before each
epoch to get the permutation of that epoch (seed + epoch), as with
``DistributedSampler``; a resumed run then sees the same order. Without it a
single-process loader still moves on to a new permutation every epoch; a
distributed one repeats the first.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, SequentialSampler

from aulib import aus as aulib_aus
from aulib.data.crops import CropStore
from aulib.workers import LOADER_SETTING, Stalled, stall_message, stall_seconds, start_context
from aulib.data.splits import check_split, read_split
from aulib.data.transforms import degrade_batch


class AUDataset(Dataset):
    """Rows of a split over a crop store.

    store: an open ``CropStore``; split: split table (``image, variant`` + AU
    columns); aus: AU numbers or a group name (labels of those AUs, in order);
    seed: seed of the degraded copies. ``dataset[i]`` is one item,
    ``dataset[[i, j, ...]]`` a whole batch (one sorted read of the store).
    """

    def __init__(self, store, split: pd.DataFrame, aus, seed: int = 0):
        self.aus = list(aulib_aus.aus_of(aus))
        split = check_split(split, self.aus, source="split")
        images = split["image"].tolist()
        self.rows = np.asarray(store.rows(images), dtype=np.int64)  # KeyError names missing images
        self.image_names = images
        self.variants = split["variant"].to_numpy(np.int64)
        self.labels = split[aulib_aus.au_columns(self.aus)].to_numpy(np.int8)
        self.seed = int(seed)
        self.size = int(store.size)
        self.style = store.style
        self.pixels = store.images   # RawCrops | PackedJpeg: (N, S, S, 3) reads, checked; they pickle by path


    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        if np.ndim(index) == 0:
            x, y = self.get_batch([int(index)])
            return x[0], y[0]
        return self.get_batch(index)

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` as (uint8 (B, 3, S, S), int8 (B, C)), in the given order."""
        indices = np.asarray(indices, dtype=np.int64)
        rows = self.rows[indices]
        order = np.argsort(rows, kind="stable")
        pixels = np.empty((len(rows), self.size, self.size, 3), dtype=np.uint8)
        pixels[order] = self.pixels[rows[order]]  # one sequential fancy read
        deg = np.flatnonzero(self.variants[indices] > 0)
        if len(deg):
            j = indices[deg]
            pixels[deg] = degrade_batch(pixels[deg], self.variants[j], [self.image_names[k] for k in j], self.seed)
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
        return x, torch.from_numpy(self.labels[indices])


class ShuffleSampler(Sampler):
    """Random permutation of ``range(n)`` seeded by ``seed + epoch``.

    :meth:`set_epoch` picks the epoch; otherwise each new iteration moves on
    to the next epoch by itself."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = int(n), int(seed), 0
        self._epoch_set = self._started = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._epoch_set = int(epoch), True

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if self._started and not self._epoch_set:
            self.epoch += 1
        self._started, self._epoch_set = True, False
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


class BatchIndexSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` and
    forwards :meth:`set_epoch` to it."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), bool(drop_last)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Fix the shuffle of ``loader`` (from :func:`make_loader`) for ``epoch``; call it before every epoch."""
    loader.sampler.set_epoch(epoch)


def split_dataframe(ws, names: list[str]) -> pd.DataFrame:
    """Split files of a workspace stacked in order (e.g. ``["A", "C"]`` for
    pretraining). AU columns missing from a split become unknown (-1)."""
    if isinstance(names, str):
        names = [names]
    parts = [read_split(name, ws=ws) for name in names]
    cols = []
    for p in parts:
        cols += [c for c in p.columns if c not in cols]
    out = pd.concat([p.reindex(columns=cols) for p in parts], ignore_index=True)
    au_cols = cols[2:]
    out[au_cols] = out[au_cols].fillna(-1).astype(np.int8)
    return out


class WatchedLoader(DataLoader):
    """A DataLoader whose workers are watched: no batch within ``stall_minutes``
    raises :class:`aulib.workers.Stalled` naming ``work`` (split and crop store)
    and the batch waited for (torch's own timeout says only "timed out")."""

    def __init__(self, *args, stall_minutes: float | None = None, work: str = "data loader", **kwargs):
        self.stall_minutes, self.work = stall_minutes, work
        if kwargs.get("num_workers", 0) > 0:
            kwargs.update(timeout=stall_seconds(stall_minutes),
                          multiprocessing_context=start_context("aulib.data.dataset"))
        super().__init__(*args, **kwargs)

    def __iter__(self):
        it = super().__iter__()
        try:
            yield from it
        except RuntimeError as e:
            if "timed out" not in str(e):
                raise
            k = getattr(it, "_rcvd_idx", None)     # the batch waited for (torch keeps no record of its rows)
            stuck = f"batch {k + 1} of {len(self)}" if isinstance(k, int) else "the next batch"
            raise Stalled(stall_message(self.work, self.stall_minutes, stuck, LOADER_SETTING)) from None


def make_loader(ws, split: str | pd.DataFrame, group, img_size: int, batch_size: int, train: bool,
                num_workers: int = 0, seed: int = 0, distributed: bool = False, style: str | None = None,
                drop_last: bool | None = None, world_size: int | None = None,
                rank: int | None = None, stall_minutes: float | None = None) -> DataLoader:
    """DataLoader of (uint8 (B, 3, S, S), int8 (B, C)) batches of a split.

    split: a split name of ``ws`` or a split table. group: the AU group, a
    built-in name or an :class:`aulib.aus.AUGroup` (labels and the default crop
    style ``group.crop``). ``train``
    shuffles (seeded; see :func:`set_epoch`) and by default drops the last
    incomplete batch (kept when there is no complete one); otherwise the order
    is the split's row order. ``num_workers`` processes read the batches, watched
    (``stall_minutes``, None: :data:`aulib.workers.STALL_MINUTES`; :class:`WatchedLoader`).
    ``distributed`` uses ``DistributedSampler``
    (``world_size``/``rank`` default to the torch.distributed group): each
    rank gets its share; for evaluation that is rows ``rank::world_size``
    (padded by wrapping to equal length), so gather before writing predictions.
    """
    group = aulib_aus.get_group(group)
    aus = group.aus
    df = read_split(split, aus, ws=ws) if isinstance(split, str) else split
    store = CropStore(ws.crops(style or group.crop, img_size))
    dataset = AUDataset(store, df, aus, seed=seed)
    if distributed:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=train,
                                     seed=seed, drop_last=False)
    elif train:
        sampler = ShuffleSampler(len(dataset), seed)
    else:
        sampler = SequentialSampler(dataset)
    if drop_last is None:
        drop_last = train and len(sampler) >= batch_size
    batches = BatchIndexSampler(sampler, batch_size, drop_last)
    work = f"data loader of split {split if isinstance(split, str) else f'({len(df)} rows)'} ({store.dir})"
    return WatchedLoader(dataset, sampler=batches, batch_size=None, num_workers=num_workers,
                         pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0,
                         stall_minutes=stall_minutes, work=work)


def show_batch(x: torch.Tensor, y: torch.Tensor | None = None, aus=None, ncols: int = 8,
               titles: list[str] | None = None, scale: float = 1.6):
    """Grid of a batch of images, uint8 or float (B, 3, H, W) in [0, 255],
    titled with the AUs labelled present (from ``y`` (B, C) over ``aus``) or
    with ``titles``. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    n = len(x)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, (scale + 0.35) * nrows), squeeze=False)
    if titles is None and y is not None:
        aus = list(aulib_aus.aus_of(aus))
        titles = [" ".join(str(a) for a, v in zip(aus, row) if v == 1) or "none" for row in y.tolist()]
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(x[i].detach().cpu().permute(1, 2, 0).clamp(0, 255).to(torch.uint8).numpy())
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def show_crops(ws, images, size: int, styles=("aligned", "box1.5"), scale: float = 1.8):
    """The crops of ``images`` (rows) in each crop style (columns), read from
    the workspace's crop stores of ``size`` px. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    images = list(images)
    stores = [CropStore(ws.crops(style, size)) for style in styles]
    fig, axes = plt.subplots(len(images), len(styles), figsize=(scale * len(styles), scale * len(images)),
                             squeeze=False)
    for j, store in enumerate(stores):
        pixels = store.images[store.rows(images)]
        for i, image in enumerate(images):
            ax = axes[i, j]
            ax.imshow(pixels[i])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(store.style, fontsize=9)
            if j == 0:
                ax.set_ylabel(image.rsplit("/", 1)[-1], fontsize=7)
    fig.tight_layout()
    return fig
