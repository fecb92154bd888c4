"""The model ladder behind one interface: :func:`get_model` -> :class:`Classifier`.

Registered names (:data:`MODEL_NAMES`, :mod:`.registry`):

- ``minilm-l1`` / ``-l2`` / ``-l3`` / ``-l6``: the packaged all-MiniLM-L6-v2 truncated to its first
  k layers, mean-pooled as sentence-transformers does, plus a linear head (:mod:`.hf`);
- ``bow``: TF-IDF (1-2-gram) logistic regression (scikit-learn), fitted exactly on soft labels
  (:mod:`.bow`);
- ``tiny-transformer``: a 2-layer, d=128 transformer trained from scratch on MiniLM's tokenizer
  (:mod:`.tiny`).

Any other string is a Hugging Face model name or a local folder (``gpt2``,
``EleutherAI/pythia-410m``, a ``save_pretrained`` folder, ...), loaded by :mod:`.hub`: a folder
or the local Hugging Face cache first, the hub only when it is switched on and answers within
seconds (else a ``RuntimeError`` at once). Every model is built for ``n_classes`` classes
(K >= 2; the pipeline takes K from the dataset). Training modes of the transformer models
(``mode=``, :data:`MODES`): ``full``, ``probe``, ``cached-trunk`` (see :mod:`.hf`).
"""

from __future__ import annotations

from w2s_utils.engine.models.base import Classifier, TorchClassifier
from w2s_utils.engine.models.bow import BowClassifier
from w2s_utils.engine.models.build import get_model
from w2s_utils.engine.models.dropout import FastDropout, use_fast_dropout
from w2s_utils.engine.models.hf import HFClassifier, layer_list
from w2s_utils.engine.models.hub import (
    HUB_PROBE_S,
    check_loadable,
    from_pretrained,
    hub_error,
    hub_unavailable_reason,
    in_local_hf_cache,
    load_backbone,
    load_tokenizer,
)
from w2s_utils.engine.models.registry import (
    DECODER_TYPES,
    HUB_EXAMPLES,
    MINILM,
    MODEL_NAMES,
    MODELS,
    MODES,
    ModelSpec,
    check_mode,
    check_model_name,
    describe_model,
    is_hub_like,
    is_torch_model,
    minilm_path,
    model_identity,
    trains_everything,
)
from w2s_utils.engine.models.text import (
    Tokenized,
    last_token_pool,
    mean_pool,
    pad_ids,
    tokenize,
)
from w2s_utils.engine.models.tiny import TinyEncoder, TinyTransformerClassifier

__all__ = [
    "DECODER_TYPES",
    "HUB_EXAMPLES",
    "HUB_PROBE_S",
    "MINILM",
    "MODELS",
    "MODEL_NAMES",
    "MODES",
    "BowClassifier",
    "Classifier",
    "FastDropout",
    "HFClassifier",
    "ModelSpec",
    "TinyEncoder",
    "TinyTransformerClassifier",
    "Tokenized",
    "TorchClassifier",
    "check_loadable",
    "check_mode",
    "check_model_name",
    "describe_model",
    "from_pretrained",
    "get_model",
    "hub_error",
    "hub_unavailable_reason",
    "in_local_hf_cache",
    "is_hub_like",
    "is_torch_model",
    "last_token_pool",
    "layer_list",
    "load_backbone",
    "load_tokenizer",
    "mean_pool",
    "minilm_path",
    "model_identity",
    "pad_ids",
    "tokenize",
    "trains_everything",
    "use_fast_dropout",
]
