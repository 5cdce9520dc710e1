"""The loss terms by name, without torch: their names, weight keys and
default weights, and the valid ``ablate`` entries. :mod:`aulib.model.config`
checks a config against it; :mod:`aulib.model.losses` gives each name its
function (a new term is one row here plus its function there).

Default weights ``w_mv = w_cr = 1`` were chosen by the loss-weight study
(``python -m aulib.train.study``; how they relate to MLCR's 400 / 100:
:mod:`aulib.model.losses`).
"""
from __future__ import annotations

#: Default weights of the multi-view (L_mv) and co-regularisation (L_cr) terms.
W_MV, W_CR = 1.0, 1.0

#: {term name: (TrainConfig field holding its weight or None, default weight)}, in the
#: order the terms are added and logged; a term without a field takes ``loss_weights[name]``.
TERMS: dict[str, tuple[str | None, float]] = {
    "mv": ("w_mv", W_MV),
    "cr": ("w_cr", W_CR),
}
#: Ablation switch that is not a term: batch balancing of the BCE.
BALANCE = "balance"


def ablation_names() -> tuple[str, ...]:
    """Every valid entry of ``ablate``: the terms' names, then ``balance``."""
    return (*TERMS, BALANCE)
