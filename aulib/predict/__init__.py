"""Stage 8, prediction on new pictures: ``predictor`` (:class:`aulib.predict.predictor.Predictor`:
chosen models -> per-face AU probabilities and decisions), ``inputs`` (files,
folders, video frames, annotation), ``plot`` (pictures with their AU bars),
``formats`` (the table as the kit, OpenFace 2 or py-feat write it), ``parser``
and ``cli`` (``python -m aulib.predict``).

This package imports none of its modules, so ``python -m aulib.predict --help``
(which reads only ``parser``) does not import torch: import names from their modules.
"""
