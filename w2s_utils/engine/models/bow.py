"""The bag-of-words teacher: :class:`BowClassifier` (TF-IDF + logistic regression, scikit-learn)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from w2s_utils.engine.models.base import Classifier
from w2s_utils.engine.train import TrainSettings, as_target_probs, history_row

__all__ = ["BowClassifier"]


class BowClassifier(Classifier):
    """TF-IDF (1-2-grams, sublinear tf) + L2 logistic regression (``C``), exact on soft labels.

    Soft labels ``q`` (``[N, K]``, any ``K = n_classes >= 2``) are fitted by duplicating each row
    once per class with sample weight ``q_k``, which makes scikit-learn's multinomial logistic
    regression minimise exactly the soft cross-entropy. Only ``loss="xent"``. Its one history row
    has the columns of :func:`~w2s_utils.engine.train.history_row` (``train_eps`` on every
    training text).
    """

    def __init__(self, n_classes: int = 2, C: float = 2.0, min_df: int = 2) -> None:
        self.name = "bow"
        self.n_classes = n_classes
        self.C = C
        self.min_df = min_df
        self.vectorizer = None
        self.clf = None

    def fit(self, texts, targets, settings=None, *, val=None, test=None, eval_hook=None):
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        s = settings or TrainSettings()
        if s.loss != "xent":
            raise ValueError(f"bow fits only loss='xent' (soft cross-entropy), got {s.loss!r}")
        k = self.n_classes
        q = as_target_probs(targets, k)
        if len(q) != len(texts):
            raise ValueError(f"bow.fit: {len(texts)} texts but {len(q)} targets")
        min_df = self.min_df if len(texts) >= 50 else 1
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True)
        x = self.vectorizer.fit_transform(list(texts))
        xs = sparse.vstack([x] * k).tocsr()
        ys = np.repeat(np.arange(k), len(texts))
        ws = q.T.reshape(-1).astype(np.float64)
        keep = ws > 0
        self.clf = LogisticRegression(C=self.C, max_iter=2000, random_state=s.seed)
        if len(np.unique(ys[keep])) < 2:
            raise ValueError(
                "bow.fit: the targets put all their weight on a single class; training needs "
                "examples of at least two classes"
            )
        self.clf.fit(xs[keep], ys[keep], sample_weight=ws[keep])
        row = history_row(
            {"step": 1, "epoch": 1.0},
            train=(q, self.predict_proba(texts)),
            val=None if val is None else (as_target_probs(val[1], k), self.predict_proba(val[0])),
            test=None if test is None else (test[1], self.predict_proba(test[0])),
        )
        if eval_hook is not None:
            row.update(eval_hook(1, self))
        return pd.DataFrame([row])

    def _check_fitted(self) -> None:
        if self.clf is None:
            raise RuntimeError("bow: call fit() before predict_proba()/features()")

    def predict_proba(self, texts):
        self._check_fitted()
        p = self.clf.predict_proba(self.vectorizer.transform(list(texts)))
        out = np.zeros((len(texts), self.n_classes))
        out[:, self.clf.classes_] = p
        return out

    def features(self, texts):
        """The TF-IDF matrix (scipy sparse ``[N, vocab]``)."""
        self._check_fitted()
        return self.vectorizer.transform(list(texts))
