"""Stage 4, training one multi-view run (above inference; the model it trains
is defined below it, in :mod:`aulib.model`): ``loop`` (train one run:
:func:`aulib.train.loop.train`), ``launch`` (in-process or torchrun:
:func:`aulib.train.launch.run_training`), ``cli`` (the command line),
``watch`` (TensorBoard scalars, ETA), ``curves`` (training curves),
``errors`` (torchrun's root cause), ``study`` (the loss-weight study).

``python -m aulib.train --config FILE`` / ``torchrun -m aulib.train ...``: see :mod:`aulib.train.loop`.
This package's own names are the training config's (torch-free, so that ``--help``
answers at once); the loop's are imported from their modules.
"""
from ..model.config import RESUMABLE_CHANGES, TrainConfig, notebook_config, parse_overrides

__all__ = ["RESUMABLE_CHANGES", "TrainConfig", "notebook_config", "parse_overrides"]
