"""Tests for engine.models: registry, hub errors (fast, whole), loading a hub name from the local
Hugging Face cache, pooling, cached-trunk equivalence, modes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests._synthetic import tiny_bert
from w2s_utils.engine import models
from w2s_utils.engine.features import TextFeatureStore
from w2s_utils.engine.models import MODEL_NAMES, get_model
from w2s_utils.engine.train import TrainSettings

TEXTS = [
    "a quick brown fox jumps",
    "the movie was not good at all, sadly",
    "hello",
    "x y z w v u t s r q p o n m",
]


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_model("no-such-model")
    for name in MODEL_NAMES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="minilm-l6"):
        get_model("minilm-l4")
    with pytest.raises(ValueError, match="mode"):
        get_model("minilm-l1", mode="lora")


def test_hub_name_offline_is_a_clear_runtime_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(RuntimeError, match="needs the internet"):
        get_model("EleutherAI/pythia-14m-not-cached")


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_cached_trunk_equals_full_forward(device, request):
    if device == "cuda":
        request.getfixturevalue("cuda_device")  # skips without a GPU
    m = get_model(
        "minilm-l3", device=device, mode="cached-trunk", trainable_layers=1, use_disk_cache=False
    )
    m.max_length = 24
    m.reset_parameters(0)
    m.train_mode(False)
    toks = models.tokenize(m.tokenizer, TEXTS, m.max_length)
    b = models.pad_ids(toks, m.pad_id, m.device)
    with torch.no_grad():
        trunk = m._run_layers(m._embed(b), b["attention_mask"], 0, m.frozen)
        top = m.head(m._pool(m._run_top(trunk, b["attention_mask"]), b["attention_mask"]))
    full = torch.as_tensor(m.full_forward_logits(TEXTS))
    assert m.frozen == 2
    torch.testing.assert_close(top.cpu(), full, atol=1e-5, rtol=1e-5)
    # end to end through the float16 per-text cache (unpadded, batched by length)
    cached = m.predict_proba(TEXTS)
    np.testing.assert_allclose(cached, torch.softmax(full, -1).numpy(), atol=2e-3)


def test_cached_trunk_state_is_computed_once(monkeypatch):
    TextFeatureStore.clear_memory()
    m = get_model("minilm-l1", mode="cached-trunk", trainable_layers=1, use_disk_cache=False)
    calls = []
    orig = m._frozen_batches

    def counting(texts, fn, batch_size=128):
        calls.append(len(texts))
        return orig(texts, fn, batch_size)

    monkeypatch.setattr(m, "_frozen_batches", counting)
    m.prepare(TEXTS[:2])
    m.prepare(TEXTS)
    assert calls == [2, 2]  # the second call computes only the two new texts


def _tiny_gpt2(tmp_path):
    """A randomly initialised 2-layer GPT-2 with an offline word-level tokenizer, on disk."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tmodels
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    words = "<|endoftext|> a quick brown fox the movie was not good at all sadly hello x y z"
    vocab = {w: i for i, w in enumerate(["[UNK]"] + words.split())}
    tok = Tokenizer(tmodels.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", unk_token="[UNK]"
    )
    assert fast.pad_token is None
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(vocab),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        eos_token_id=vocab["<|endoftext|>"],
        bos_token_id=vocab["<|endoftext|>"],
    )
    folder = tmp_path / "tiny-gpt2"
    GPT2Model(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return str(folder)


def test_decoder_pools_last_non_pad_token(tmp_path):
    path = _tiny_gpt2(tmp_path)
    m = get_model(path, mode="full")
    assert m.pooling == "last"
    assert m.tokenizer.pad_token == "<|endoftext|>"
    texts = ["a quick brown fox", "hello <|endoftext|>", "the movie was not good at all", "x"]
    batched = m.features(texts)
    alone = np.concatenate([m.features([t]) for t in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    # the text that ends with the pad token's text: its pooled state is that last token's state
    ids = m.tokenizer(texts[1])["input_ids"]
    assert ids[-1] == m.tokenizer.pad_token_id
    with torch.no_grad():
        out = m.backbone(input_ids=torch.tensor([ids], device=m.device))
        h = out.last_hidden_state[0, -1].cpu().numpy()
    np.testing.assert_allclose(batched[1], h, atol=1e-5)


def test_decoder_cached_trunk_equals_full(tmp_path):
    path = _tiny_gpt2(tmp_path)
    m = get_model(path, mode="cached-trunk", trainable_layers=1, use_disk_cache=False)
    m.reset_parameters(0)
    texts = ["a quick brown fox", "hello", "the movie was not good at all"]
    full = torch.softmax(torch.as_tensor(m.full_forward_logits(texts)), -1).numpy()
    np.testing.assert_allclose(m.predict_proba(texts), full, atol=2e-3)


def test_bow_fits_soft_labels_exactly_weighted():
    texts = ["good great fine", "bad awful poor", "good fine", "awful bad"] * 10
    hard = np.array([1, 0, 1, 0] * 10)
    soft = np.stack([1 - hard * 0.6 - 0.2, hard * 0.6 + 0.2], axis=1)
    m_hard = get_model("bow")
    m_hard.fit(texts, hard)
    m_soft = get_model("bow")
    hist = m_soft.fit(texts, soft, val=(texts, soft))
    p_hard, p_soft = m_hard.predict_proba(texts), m_soft.predict_proba(texts)
    assert p_hard.shape == (40, 2)
    assert (p_hard.argmax(1) == hard).all()
    # soft targets at 0.8 / 0.2 keep the fitted probabilities well inside (0, 1)
    assert p_soft[hard == 1, 1].max() < p_hard[hard == 1, 1].min()
    assert {"val_loss", "val_acc", "val_eps"} <= set(hist.columns)
    with pytest.raises(ValueError, match="xent"):
        get_model("bow").fit(texts, hard, TrainSettings(loss="reverse_kl"))


def test_probe_mode_trains_only_the_head():
    m = get_model("minilm-l1", mode="probe", use_disk_cache=False)
    texts = ["good great fine film", "bad awful poor film"] * 8
    y = np.array([1, 0] * 8)
    before = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    m.fit(texts, y, TrainSettings(epochs=3, lr=1e-2, batch_size=8, progress=False))
    after = m.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert m.predict_proba(texts).shape == (16, 2)
    assert m.features(texts).shape == (16, 384)


@pytest.mark.slow
def test_tiny_transformer_shapes():
    m = get_model("tiny-transformer")
    texts = ["good great fine film", "bad awful poor film"] * 4
    hist = m.fit(
        texts, np.array([1, 0] * 4), TrainSettings(epochs=1, batch_size=4, lr=1e-3, progress=False)
    )
    p = m.predict_proba(texts)
    assert p.shape == (8, 2)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert len(hist) == 1 and hist["step"].iloc[0] == 2


def test_fast_dropout_statistics_gradient_and_seed():
    d = models.FastDropout(0.1)
    x = torch.ones(1000, 1000, requires_grad=True)
    torch.manual_seed(0)
    y = d(x)
    kept = y != 0
    rate = 1 - kept.double().mean().item()
    assert rate == pytest.approx(0.1, abs=3 * (0.1 * 0.9 / 1e6) ** 0.5 + 1e-4)
    assert y[kept].unique().tolist() == pytest.approx([d.scale])
    assert y.double().mean().item() == pytest.approx(1.0, abs=3e-3)  # expectation kept
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d y / d x = keep * scale
    torch.manual_seed(0)
    assert torch.equal(d(x), y)  # seeded by torch's generator
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="dropout p"):
        models.FastDropout(1.0)


def test_hf_backbones_use_fast_dropout():
    m = get_model("minilm-l1", mode="full")
    kinds = {type(x) for x in m.backbone.modules()}
    assert models.FastDropout in kinds and torch.nn.Dropout not in kinds


# ------------------------------------------------------------------- hub names, fast and real


def test_hub_name_unreachable_fails_fast_with_a_whole_message(monkeypatch):
    """With the hub switched on but not answering (a refused port here), a name that is not in
    the local cache fails in seconds with one whole message (before: 52 s of client retries and
    a message cut mid-URL); registered names and folders are never probed."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError) as err:
        get_model("someorg/no-such-model-w2s")
    assert time.perf_counter() - t0 < 10
    text = str(err.value)
    assert "'someorg/no-such-model-w2s'" in text and "cannot be reached" in text
    assert "needs the internet" in text and text.endswith("pass the folder")
    assert "\n" not in text
    with pytest.raises(RuntimeError, match="cannot be reached"):
        models.check_loadable("someorg/no-such-model-w2s")
    monkeypatch.setattr(models.hub.data, "hub_reachable", lambda *a: pytest.fail("probed"))
    models.check_loadable("minilm-l1")
    models.check_loadable(models.minilm_path())


def _tiny_bert(folder: Path) -> Path:
    """A 2-layer, width-16 BERT with random weights and the packaged MiniLM tokenizer, written
    with save_pretrained (nothing downloaded)."""
    return tiny_bert(folder, seed=0, layers=2)


_FROM_CACHE = """
import numpy as np
from w2s_utils.engine import models
models.check_loadable("tiny-org/tiny-bert")  # found in the local cache: no probe
texts = ["a quick brown fox jumps", "the movie was not good at all, sadly", "hello"]
out = []
for source in ("tiny-org/tiny-bert", {folder!r}):
    m = models.get_model(source, n_classes=3, mode="cached-trunk", trainable_layers=1,
                         use_disk_cache=False)
    m.reset_parameters(0)
    out.append(m.predict_proba(texts))
    print(source, m.model_type, m.n_layers, m.frozen)
assert out[0].shape == (3, 3) and np.allclose(out[0].sum(1), 1)
np.testing.assert_allclose(out[0], out[1], rtol=0, atol=1e-6)
print("same")
"""


@pytest.mark.slow
def test_hub_name_loads_from_the_local_hf_cache(tmp_path):
    """The real loading code for a hub name, offline: a model in the local Hugging Face cache
    (the layout ``from_pretrained`` leaves: refs/main -> snapshots/<rev>/) loads by its name, as
    a 3-class classifier, and predicts exactly what the same folder loaded by path predicts."""
    rev = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-bert"
    folder = _tiny_bert(repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HUB_OFFLINE": "1",
        "W2S_DEVICE": "cpu",
        "W2S_CACHE_DIR": str(tmp_path / "cache"),
    }
    script = _FROM_CACHE.format(folder=str(folder))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tiny-org/tiny-bert bert 2 1" in done.stdout and "same" in done.stdout
