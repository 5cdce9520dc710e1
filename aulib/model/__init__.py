"""The model a run trains, below inference and training: ``config``
(:class:`aulib.model.config.TrainConfig`, every training setting; no torch),
``loss_terms`` (the loss terms' names and default weights; no torch),
``losses`` (the loss functions and :class:`aulib.model.losses.MultiViewLoss`),
``network`` (:class:`aulib.model.network.MultiViewNet`), ``distributed`` (the
only device and process-group code).

:mod:`aulib.infer` and :mod:`aulib.predict` load trained models through this
package; :mod:`aulib.train` (the loop, launcher and monitoring) sits above
inference. This package imports none of its modules, so reading a config
(``python -m aulib.train --help``) imports no torch.
"""
