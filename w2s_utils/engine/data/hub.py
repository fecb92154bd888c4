"""Hub datasets (the paper preset): their specs, formatting, and a fast offline failure.

Pairwise preference data and QA sets become binary examples by a fair coin fixed by each row's
content (see :data:`HUB_SPECS`); the first successful load is stored as a compact verified file,
so later loads need no hub. Without a hub the load fails in seconds (:func:`hub_reachable`).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from w2s_utils._validate import check_number
from w2s_utils.engine.cache import cache_dir, notice
from w2s_utils.engine.data.compact import Logger, load_compact, save_compact
from w2s_utils.engine.data.records import TextDataset
from w2s_utils.engine.data.registry import DATA_FORMAT, OFFLINE_DATASETS, env_flag, hub_offline


def _stable_coin(*parts: str) -> int:
    """A fair, seed-independent coin from the content of a row (0 or 1)."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()[0] & 1


def _stable_choice(options: Sequence[str], *parts: str) -> str:
    d = hashlib.sha256(("choice\x00" + "\x00".join(parts)).encode("utf-8")).digest()
    return options[int.from_bytes(d[:4], "big") % len(options)]


def _fmt_sciq(ex: dict) -> tuple[str, int]:
    label = _stable_coin(ex["question"], ex["correct_answer"])
    distractors = [ex["distractor1"], ex["distractor2"], ex["distractor3"]]
    answer = ex["correct_answer"] if label else _stable_choice(distractors, ex["question"])
    support = (ex.get("support") or "").strip()
    text = (
        f"{support}\nQ: {ex['question']}\nA: {answer}"
        if support
        else f"Q: {ex['question']}\nA: {answer}"
    )
    return text, label


def _fmt_amazon(ex: dict) -> tuple[str, int]:
    return f"{ex['title']}\n{ex['content']}", int(ex["label"])


def _fmt_boolq(ex: dict) -> tuple[str, int]:
    return f"Passage: {ex['passage']}\nQuestion: {ex['question']}", int(bool(ex["answer"]))


def _fmt_cosmos(ex: dict) -> tuple[str, int]:
    answers = [ex[f"answer{i}"] for i in range(4)]
    true = answers[int(ex["label"])]
    label = _stable_coin(ex["context"], ex["question"])
    answer = true if label else _stable_choice([a for a in answers if a != true], ex["question"])
    return f"Context: {ex['context']}\nQuestion: {ex['question']}\nAnswer: {answer}", label


def _render_chat(value: Any) -> str:
    """hh-rlhf transcripts are strings; CAI ones are lists of {role, content} messages."""
    if isinstance(value, str):
        return value
    role_names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    return "".join(f"\n\n{role_names.get(m['role'], m['role'])}: {m['content']}" for m in value)


def _fmt_pair(ex: dict) -> tuple[str, int]:
    chosen, rejected = _render_chat(ex["chosen"]), _render_chat(ex["rejected"])
    label = _stable_coin(chosen, rejected)
    return (chosen if label else rejected), label


@dataclass(frozen=True)
class HubSpec:
    """A hub dataset: its path, config, the splits pooled, the row formatter ``fmt`` (a row ->
    ``(text, label)``), a pinned revision and the names of classes 0 and 1."""

    path: str
    config: str | None
    splits: tuple[str, ...]
    fmt: Callable[[dict], tuple[str, int]]
    revision: str | None = None
    label_names: tuple[str, str] = ("wrong", "correct")


#: Hub sources. Pairwise preference data (hh_rlhf, cai_harmless) follow Burns et al. / Yang et
#: al.'s W2S reward-modelling framing: each (chosen, rejected) pair yields ONE example, the chosen
#: response (label 1) or the rejected one (label 0) by a fair coin fixed by the pair's content, so
#: the two near-identical transcripts of a pair never end up in different splits. QA sets pick the
#: correct answer or a distractor the same way (sciq text: support + question + answer; cosmos_qa:
#: context + question + answer; boolq: passage + question; amazon_polarity: title + content, as in
#: Burns et al.). Only splits that carry labels are pooled (make_splits makes its own held-out
#: test set); amazon_polarity uses its 400k test split only. cosmos_qa is a script dataset, which
#: datasets>=4 cannot run, so it is read from the hub's auto-converted parquet branch. The first
#: successful load is stored as a compact verified file, so later loads need no hub.
HUB_SPECS: dict[str, HubSpec] = {
    "sciq": HubSpec("allenai/sciq", None, ("train", "validation", "test"), _fmt_sciq),
    "amazon_polarity": HubSpec(
        "fancyzhx/amazon_polarity", None, ("test",), _fmt_amazon, None, ("negative", "positive")
    ),
    "boolq": HubSpec(
        "google/boolq", None, ("train", "validation"), _fmt_boolq, None, ("no", "yes")
    ),
    "cosmos_qa": HubSpec(
        "allenai/cosmos_qa", None, ("train", "validation"), _fmt_cosmos, "refs/convert/parquet"
    ),
    "hh_rlhf": HubSpec(
        "Anthropic/hh-rlhf", None, ("train", "test"), _fmt_pair, None, ("rejected", "chosen")
    ),
    "cai_harmless": HubSpec(
        "HuggingFaceH4/cai-conversation-harmless",
        None,
        ("train_prefs", "test_prefs"),
        _fmt_pair,
        None,
        ("rejected", "chosen"),
    ),
}


def _proxy_for(scheme: str, host: str) -> str | None:
    """The proxy URL the environment sets for ``scheme://host`` (``NO_PROXY`` honoured)."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxy


def _probe(host: str, port: int, proxy: str | None, timeout_s: float) -> bool:
    """Open ``host:port`` directly, or through ``proxy``: a TCP connection to the proxy and, for an
    ``http://`` proxy, a ``CONNECT`` that it must answer with 2xx (407, credentials wanted, counts
    as reachable: the real client may hold them)."""
    if proxy is None:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    default = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080, "socks4": 1080}
    p_port = parts.port or default.get(parts.scheme, 80)
    with socket.create_connection((parts.hostname or "", p_port), timeout=timeout_s) as sock:
        if parts.scheme != "http":
            return True  # reachable; what lies behind it the real client finds out
        sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        status = sock.recv(64).split(b"\r\n", 1)[0].split()
        return len(status) >= 2 and (status[1].startswith(b"2") or status[1] == b"407")


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """True when the hub endpoint (``HF_ENDPOINT``, default https://huggingface.co) can be reached
    within ``timeout_s`` seconds, DNS included: a TCP connection, made through the proxy that the
    environment sets for it (``HTTPS_PROXY``/``ALL_PROXY``, ``NO_PROXY`` honoured), so a dead
    proxy fails here in seconds instead of in the hub client's retries. A malformed
    ``HF_ENDPOINT`` raises ``ValueError`` naming it.
    """
    timeout_s = check_number(timeout_s, "hub_reachable: timeout_s", lo=0.0, lo_open=True)
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    hostport = endpoint.split("://", 1)[-1].split("/", 1)[0]
    host, _, port_s = hostport.partition(":")
    if not host or (port_s and not port_s.isdigit()):
        raise ValueError(
            f"HF_ENDPOINT={endpoint!r}: not a URL such as https://huggingface.co[:port]; "
            "fix it or unset it"
        )
    scheme = "http" if endpoint.startswith("http://") else "https"
    port = int(port_s) if port_s else (80 if scheme == "http" else 443)
    proxy = _proxy_for(scheme, host)
    result: list[bool] = []

    def probe() -> None:
        try:
            result.append(_probe(host, port, proxy, timeout_s))
        except (OSError, ValueError):
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)  # getaddrinfo has no timeout of its own
    worker.start()
    worker.join(timeout_s + 0.5)
    return bool(result and result[0])


def _hub_error(name: str, path: str, cause: str) -> RuntimeError:
    return RuntimeError(
        f"dataset {name!r} ({path}) needs the internet (Hugging Face hub) or a local path: "
        f"{cause}. "
        "Run where huggingface.co is reachable (the datasets cache then keeps it), or pass a local "
        "path instead of the name: a .jsonl/.csv/.tsv/.parquet file or a folder written by "
        "`datasets.Dataset.save_to_disk`, with 'text' and 'label' columns (other column names: "
        "`w2s data register`, data.register). Offline datasets need no hub: "
        f"{', '.join(OFFLINE_DATASETS)}."
    )


def hub_compact_meta(name: str) -> dict[str, Any]:
    """What the compact file of hub dataset ``name`` must record (hub path, revision, splits)."""
    spec = HUB_SPECS[name]
    return {
        "dataset": name,
        "data_format": DATA_FORMAT,
        "hub_path": spec.path,
        "config": spec.config,
        "revision": spec.revision,
        "splits": list(spec.splits),
    }


def load_hub(name: str, log: Logger = notice) -> TextDataset:
    """Hub dataset ``name`` (one of ``HUB_DATASETS``): from its compact file when one was built,
    else from the hub or the local ``datasets`` cache, then stored compact.

    Offline (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` set, or :func:`hub_reachable` false) only
    the local ``datasets`` cache is asked, so a missing dataset fails in seconds with a
    ``RuntimeError`` that says what to do; the message is never cut.
    """
    spec = HUB_SPECS[name]
    compact = cache_dir("data") / f"hub-{name}-v{DATA_FORMAT}.npz"
    records = load_compact(compact, hub_compact_meta(name), log)
    if records is not None:
        return TextDataset.from_records(name, records[0], records[1], label_names=spec.label_names)
    offline = hub_offline() or env_flag("HF_DATASETS_OFFLINE") or not hub_reachable()
    try:
        import datasets
        import huggingface_hub.constants as hub_constants
    except ImportError as e:  # pragma: no cover - datasets is a dependency
        raise RuntimeError(
            f"dataset {name!r} needs the `datasets` package ({e}); pip install datasets"
        ) from e
    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    if offline:  # only the local datasets cache can help; fail fast instead of retrying
        datasets.config.HF_HUB_OFFLINE = True
        hub_constants.HF_HUB_OFFLINE = True
    texts: list[str] = []
    labels: list[int] = []
    try:
        for split in spec.splits:
            kwargs = {"revision": spec.revision} if spec.revision else {}
            part = datasets.load_dataset(spec.path, spec.config, split=split, **kwargs)
            for ex in part:
                t, y = spec.fmt(ex)
                texts.append(t)
                labels.append(y)
    except Exception as e:
        why = "the hub is unreachable and it is not in the local datasets cache" if offline else e
        raise _hub_error(name, spec.path, f"{why} ({type(e).__name__})") from e
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
    save_compact(compact, hub_compact_meta(name), (texts, labels, None))
    return TextDataset.from_records(name, texts, labels, label_names=spec.label_names)
