"""``python -m aulib.train`` (and ``torchrun -m aulib.train``): the command line.

``python -m aulib.train --config FILE [key=value ...] [--resume [--extend]] [--overwrite] [--stop-after N]``

Without a config file or key=value pairs it prints its usage and exits 2.
``--help`` lists every TrainConfig key with its default and meaning,
generated from the settings schema (:data:`aulib.model.config.TRAIN_SPECS`);
it answers without importing torch (``__main__`` imports the loop only
once the arguments are read: :func:`aulib.train.loop.main`).
"""
from __future__ import annotations

import argparse
import sys

from ..model.config import TrainConfig, config_help, parse_overrides


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m aulib.train",
                                 description="Train (or resume) one multi-view AU run (aulib.train.loop).",
                                 epilog=config_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help="YAML file of TrainConfig keys (listed below)")
    ap.add_argument("overrides", nargs="*", help="key=value pairs applied over the file (values parsed as YAML)")
    ap.add_argument("--resume", action="store_true", help="continue the run from its last complete epoch")
    ap.add_argument("--overwrite", action="store_true", help="delete an existing run directory first")
    ap.add_argument("--extend", action="store_true",
                    help="with --resume: let the run take another number of epochs than its config.yaml")
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this epoch")
    return ap


def parse_args(argv=None) -> argparse.Namespace:
    """The parsed command line; ``--help`` and a call without any setting
    (usage, exit 2) end here, before torch is imported."""
    ap = parser()
    a = ap.parse_args(argv)
    if a.config is None and not a.overrides:
        ap.print_usage(sys.stderr)
        print(f"{ap.prog}: give --config FILE and/or key=value settings (--help lists every key)", file=sys.stderr)
        raise SystemExit(2)
    return a


def config_of(a: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of a parsed command line (checked: :data:`aulib.model.config.TRAIN_SPECS`)."""
    return (TrainConfig.from_yaml(a.config, a.overrides) if a.config
            else TrainConfig.from_dict(parse_overrides(a.overrides), source="command line"))
