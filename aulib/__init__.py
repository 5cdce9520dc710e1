"""aulib: reproducibility kit for facial Action Unit recognition.

Reproduces "TAL EmotioNet Challenge 2020: Rethinking the Model Chosen Problem
in Multi-Task Learning" on the user's own data (or the embedded SynthAU set).
"""

__version__ = "0.1.0"
