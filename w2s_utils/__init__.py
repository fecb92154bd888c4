"""w2s_utils: the library behind the weak-to-strong generalization companion book.

Modules (each one home for one concept):

- :mod:`w2s_utils.metrics` -- divergences, calibration, W2S metrics (PGR, misfit, intervals)
- :mod:`w2s_utils.bounds` -- one function per theorem: both sides, the slack, the quantities used
- :mod:`w2s_utils.instances` -- seeded random instances on which the theorems are checked
- :mod:`w2s_utils.losses` -- objectives on logits (forward/reverse KL, squared, confidence loss)
- :mod:`w2s_utils.report` -- ``w2s check FILE.npz``: every metric and theorem for saved predictions
- :mod:`w2s_utils.data` -- offline datasets from PyPI wheels, hub datasets, deterministic splits
- :mod:`w2s_utils.models` -- the model ladder (MiniLM truncations, bag-of-words, tiny transformer)
- :mod:`w2s_utils.features` -- per-text store of frozen trunk states and probe features
- :mod:`w2s_utils.train` -- the training loop
- :mod:`w2s_utils.experiment` -- the weak-to-strong pipeline with a verified result cache
- :mod:`w2s_utils.presets` -- the ``ci`` and ``paper`` settings in one readable place
- :mod:`w2s_utils.planted` -- planted tasks on real text where F* and so Err are known exactly
- :mod:`w2s_utils.cache` -- atomic, verified cache entries keyed by configuration
- :mod:`w2s_utils.plots` -- the book's figures
- :mod:`w2s_utils.book` -- the book runner (papermill, then Jupyter Book)
"""

from __future__ import annotations

__version__ = "0.1.0"
