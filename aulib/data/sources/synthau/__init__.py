"""SynthAU, the embedded synthetic AU data set, written in EmotioNet's file formats.

:mod:`.generate` writes a data root (images, labels, ground-truth faces);
:mod:`.au_model` draws the labels (prevalence, co-occurrence, intensities, the
weak annotator); :mod:`.face` draws the faces whose geometry follows the AUs.
Command line: ``python -m aulib.data.sources.synthau --root DIR --profile demo|ci --seed N``.
"""
