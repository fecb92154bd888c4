"""w2s_utils: the library behind the weak-to-strong generalization companion book.

The folders are layers; a module imports only from its own layer or the ones above it in this list
(``tests/house/test_layers.py`` checks it):

1. :mod:`w2s_utils._validate` -- one home for input checks (shapes, probabilities, labels)
2. :mod:`w2s_utils.metrics` -- divergences, classification, calibration, W2S summaries, intervals
3. :mod:`w2s_utils.theory` -- the book's results (both sides, slack, holds), the solvers that
   build students satisfying their hypotheses, counterexample searches, random instances
4. :mod:`w2s_utils.engine` -- data, models, losses, training, features, cache, the experiment
   pipeline, planted tasks, presets
5. :mod:`w2s_utils.analysis` -- runs pooled over seeds (checked to share one test order) into
   tables with intervals over seeds and the test set
6. :mod:`w2s_utils.book` -- the book runner (papermill, then Jupyter Book), figures, tables
7. :mod:`w2s_utils.check` and :mod:`w2s_utils.cli` -- ``python -m w2s_utils
   {check,run,data,book}`` (``--version`` prints ``w2s_utils.__version__``)

The predictors have one name each everywhere: ``weak`` (the teacher F_w), ``student`` (F_sw),
``ceiling`` (the strong model trained on ground truth, F_s) and ``f_star`` (the ground truth F*);
functions that compare them take ``(weak, student, ...)`` and the truth as a keyword
(``labels=`` or ``f_star=``). The core install (torch, numpy, scipy, pandas) runs layers 1-2 and
``check``; the engine and the book need the ``engine`` and ``book`` extras.
"""

from __future__ import annotations

#: The library's version (one home: ``pyproject.toml`` reads it). Part of every cache key
#: (:func:`w2s_utils.engine.cache.versions_that_matter`): a new version means a cold rebuild.
__version__ = "0.2.0"
