"""Your data as you have it: every file format and object, column mapping, label encoding,
``register`` references, class-balanced sizes for any K, loose-parsing traps and the hub's fast
offline failure (no network needed: proxies are simulated on localhost)."""

from __future__ import annotations

import csv
import json
import socket
import sys
import threading
import time
import tracemalloc
from itertools import groupby
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from w2s_utils import cli
from w2s_utils.engine import cache
from w2s_utils.engine import data as D
from w2s_utils.engine.data import hub, labels

pytestmark = pytest.mark.usefixtures("sandbox")  # every test in a private cache


# 3 classes, string labels, non-default column names; 12 rows (4 per class), one duplicate row
ROWS = [
    {"review": f"{mood} review number {i}", "sentiment": mood}
    for i in range(4)
    for mood in ("pos", "neg", "neutral")
] + [{"review": "pos review number 0", "sentiment": "pos"}]
COLS = {"text_column": "review", "label_column": "sentiment"}


def _check_three_class(ds: D.TextDataset) -> None:
    """The independent reading of ROWS: names sorted by code point, each row's label its rank."""
    names = sorted({r["sentiment"] for r in ROWS})
    assert ds.label_names == tuple(names) == ("neg", "neutral", "pos")
    assert ds.n_classes == 3 and len(ds) == 12 and ds.cleaning["duplicates_removed"] == 1
    truth = {r["review"]: names.index(r["sentiment"]) for r in ROWS}
    assert [truth[t] for t in ds.texts] == ds.labels.tolist()
    assert ds.class_counts() == [4, 4, 4]


def _write(path: Path, rows: list[dict], fmt: str) -> Path:
    if fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    elif fmt in ("csv", "tsv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t" if fmt == "tsv" else ",")
            w.writeheader()
            w.writerows(rows)
    elif fmt == "parquet":
        pd = pytest.importorskip("pandas")
        pytest.importorskip("pyarrow")
        pd.DataFrame(rows).to_parquet(path)
    return path


# ============================================================================ every format


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv", "parquet"])
def test_files_with_named_columns_and_string_labels(tmp_path, fmt):
    f = _write(tmp_path / f"mine.{fmt}", ROWS, fmt)
    ds = D.read_dataset(f, **COLS)
    _check_three_class(ds)
    assert ds.name == f"mine.{fmt}"
    ref = D.register(f, **COLS)
    assert D.is_reference(ref) and ref.startswith("local:")
    again = D.load_texts(ref)
    _check_three_class(again)
    assert again.ids == ds.ids and again.cleaning == ds.cleaning


def test_the_same_content_gives_the_same_reference_in_every_format(tmp_path):
    datasets = pytest.importorskip("datasets")
    pd = pytest.importorskip("pandas")
    refs = {
        fmt: D.register(_write(tmp_path / f"m.{fmt}", ROWS, fmt), **COLS)
        for fmt in ("jsonl", "csv", "tsv")
    }
    frame = pd.DataFrame(ROWS)
    refs["dataframe"] = D.register(frame, **COLS)
    refs["dataset"] = D.register(datasets.Dataset.from_pandas(frame), **COLS)
    assert len(set(refs.values())) == 1, refs
    renamed = D.register(frame, **COLS, name="other name")  # the name is not content
    assert renamed == refs["csv"] and D.load_texts(renamed).name == "other name"
    edited = frame.copy()
    edited.loc[0, "review"] = "an edited review"
    new = D.register(edited, **COLS)
    assert new != renamed
    assert D.dataset_identity(new) == {"registered": new.split(":")[1], "data_format": 1}


def test_datasets_objects_folders_and_class_label_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["b", "a", "c"])}
    )
    train = datasets.Dataset.from_dict(
        {"text": ["x1", "x2", "x3"], "label": [0, 1, 2]}, features=feats
    )
    test = datasets.Dataset.from_dict({"text": ["y1", "y2"], "label": [2, 0]}, features=feats)
    dd = datasets.DatasetDict({"train": train, "test": test})
    ds = D.read_dataset(dd)
    # ClassLabel indices keep their values and their names (not re-sorted)
    assert ds.label_names == ("b", "a", "c") and ds.labels.tolist() == [0, 1, 2, 2, 0]
    assert ds.texts == ("x1", "x2", "x3", "y1", "y2") and ds.name == "datasetdict"
    dd.save_to_disk(tmp_path / "saved")
    from_disk = D.load_texts(tmp_path / "saved")
    assert from_disk.label_names == ds.label_names and from_disk.labels.tolist() == [0, 1, 2, 2, 0]
    train.to_parquet(tmp_path / "train.parquet")
    assert D.read_dataset(tmp_path / "train.parquet").label_names == ("b", "a", "c")
    bad = datasets.Dataset.from_dict({"text": ["z"], "label": [5]}, features=None)
    with pytest.raises(ValueError, match="one class"):
        D.read_dataset(bad)


def test_boolean_and_integer_labels(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": [True, False, True]})
    ds = D.read_dataset(frame)
    assert ds.label_names == ("False", "True") and ds.labels.tolist() == [1, 0, 1]
    ints = pd.DataFrame({"text": list("abcdef"), "label": [2, 0, 1, 1, 2, 0]})
    ds = D.read_dataset(ints)
    assert ds.labels.tolist() == [2, 0, 1, 1, 2, 0] and ds.label_names == () and ds.n_classes == 3


@given(
    st.lists(st.sampled_from(["zeta", "Alpha", "beta", "é", "10", "b2", "Z"]), min_size=2),
)
def test_string_labels_are_their_rank_in_sorted_order(values):
    """Oracle: the label of a name is its index in sorted(set(names)); names are recorded."""
    names = [v for v in values if not v.isdigit()] or ["x", "y"]
    if len(set(names)) < 2:
        names = names + ["other"]
    codes, label_names, k = labels.encode_labels(names, lambda i: f"row {i}", "label")
    assert label_names == tuple(sorted(set(names))) and k == len(set(names))
    assert [label_names[c] for c in codes] == names


@given(st.lists(st.integers(0, 6), min_size=2))
def test_integer_labels_keep_values_or_name_the_missing_classes(values):
    present = sorted(set(values))
    if len(present) < 2:
        with pytest.raises(ValueError, match="one class"):
            labels.encode_labels(values, str, "label")
        return
    if present != list(range(present[-1] + 1)):
        with pytest.raises(ValueError) as err:
            labels.encode_labels(values, str, "label")
        missing = [c for c in range(present[-1]) if c not in present]
        runs = [[c for _, c in g] for _, g in groupby(enumerate(missing), lambda t: t[1] - t[0])]
        shown = ", ".join(f"{r[0]}" if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
        assert f"{len(missing)} class" in str(err.value) and f"({shown})" in str(err.value)
        assert "renumber" in str(err.value) and "multiple of" not in str(err.value)
        return
    codes, names, k = labels.encode_labels(values, str, "label")
    assert codes == values and names == () and k == present[-1] + 1


# ============================================================================ errors


def _err(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_missing_column_names_the_columns_that_exist(tmp_path):
    for fmt in ("jsonl", "csv", "parquet"):
        f = _write(tmp_path / f"m.{fmt}", ROWS, fmt)
        msg = _err(D.read_dataset, f)
        assert "no text column 'text'" in msg and "'review'" in msg and "'sentiment'" in msg
        assert "--text-column" in msg and str(f) in msg
        msg = _err(D.read_dataset, f, text_column="review")
        assert "no label column 'label'" in msg
    pd = pytest.importorskip("pandas")
    msg = _err(D.read_dataset, pd.DataFrame(ROWS), text_column="review", label_column="mood")
    assert "DataFrame" in msg and "'sentiment'" in msg


def test_text_null_number_or_list_is_an_error_not_a_string(tmp_path):
    for bad, what in ((None, "missing"), (3, "int"), (["a"], "list"), ({"a": 1}, "dict")):
        f = tmp_path / "m.jsonl"
        rows = [{"text": "a", "label": 0}, {"text": bad, "label": 1}]
        f.write_text("\n".join(json.dumps(r) for r in rows))
        msg = _err(D.load_texts, f)
        assert "line 2" in msg and what in msg and str(f) in msg
    with pytest.raises(ValueError, match="texts\\[1\\] is a NoneType"):
        D.TextDataset.from_records("x", ["a", None], [0, 1])  # type: ignore[list-item]


def test_duplicate_key_in_a_json_line_is_an_error(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text('{"text": "a", "label": 0}\n{"text": "b", "label": 0, "label": 1}\n')
    msg = _err(D.load_texts, f)
    assert "line 2" in msg and "'label' appears twice" in msg


@pytest.mark.parametrize("value", ["1_0", "١", "0x1", "1e1"])
def test_underscored_and_exotic_digits_are_not_class_indices(tmp_path, value):
    f = tmp_path / "m.jsonl"
    rows = [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": value}]
    f.write_text("\n".join(json.dumps(r) for r in rows))
    msg = _err(D.load_texts, f)
    assert "line 3" in msg and "class" in msg
    with pytest.raises(ValueError, match="not a class index"):
        D.TextDataset.from_records("x", ["a", "b"], np.array([0, value], dtype=object))


def test_an_empty_dataset_name_is_not_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for fn in (D.load_texts, D.dataset_identity, D.check_dataset_name):
        for name in ("", "  "):
            assert "empty" in _err(fn, name)
    assert "not a reference" in _err(D.load_texts, "local:123")


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    j = tmp_path / "bom.jsonl"
    j.write_bytes(b"\xef\xbb\xbf" + b'{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n')
    assert D.load_texts(j).texts == ("a", "b")
    c = tmp_path / "bom.csv"
    c.write_bytes("\ufefftext,label\na,neg\nb,pos\n".encode())
    ds = D.load_texts(c)
    assert ds.texts == ("a", "b") and ds.label_names == ("neg", "pos")


def test_non_contiguous_integer_labels_name_the_missing_classes(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text("\n".join(json.dumps({"text": f"t{i}", "label": (0, 5)[i % 2]}) for i in range(8)))
    msg = _err(D.load_texts, f)
    assert "(1-4)" in msg and "0 -> 0, 5 -> 1" in msg and "multiple of" not in msg


def test_one_huge_label_allocates_nothing_per_class(tmp_path, capsys):
    f = tmp_path / "m.jsonl"
    f.write_text(
        '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n{"text": "c", "label": 1000000000}\n'
    )
    tracemalloc.start()
    t0 = time.perf_counter()
    assert cli.main(["data", "info", str(f)]) == 2
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - t0 < 5 and peak < 50e6  # 10^9 classes would be 8 GB
    err = capsys.readouterr().err
    assert "2-999999999" in err and "999999998 classes" in err
    with pytest.raises(ValueError, match="n_classes"):
        D.TextDataset("x", ("a",), np.array([0]), ("i",), n_classes=10**9)


@pytest.mark.parametrize(
    "rows, named",
    [
        ([0, 1, None], "missing"),
        ([0, 1, float("nan")], "missing"),
        ([0, 1, 0.5], "0.5"),
        ([0, 1, "0.5"], "a number but not a class index"),
        ([0, 1, -1], "negative"),
        ([0, 1, "pos"], "mixes class indices and class names"),
        ([1, 1, 1], "one class"),
        (["pos", "pos", "pos"], "one class"),
        ([0, 1, [1]], "list"),
    ],
)
def test_label_errors_say_what_and_where(tmp_path, rows, named):
    f = tmp_path / "m.jsonl"
    f.write_text("\n".join(json.dumps({"text": f"t{i}", "label": y}) for i, y in enumerate(rows)))
    msg = _err(D.load_texts, f)
    assert named in msg
    if named not in ("one class",):
        assert "line 3" in msg


def test_parquet_without_pyarrow_says_what_to_do(tmp_path, monkeypatch):
    f = tmp_path / "m.parquet"
    f.write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import raises ImportError
    msg = _err(D.load_texts, f)
    assert "pyarrow" in msg and "pip install pyarrow" in msg and str(f) in msg


def test_damaged_files_and_unknown_sources(tmp_path):
    pytest.importorskip("pyarrow")
    f = tmp_path / "m.parquet"
    f.write_bytes(b"PAR1 not really")
    assert "not a readable Parquet file" in _err(D.load_texts, f)
    c = tmp_path / "m.csv"
    c.write_text("text,label\na,0\nb,1,extra\n")
    assert "line 3: 3 fields but the header has 2" in _err(D.load_texts, c)
    c.write_text("text,text,label\na,b,0\n")
    assert "more than once" in _err(D.load_texts, c)
    assert "not a data source" in _err(D.register, [("a", 0)])


def test_registered_reference_errors(tmp_path, monkeypatch):
    f = _write(tmp_path / "m.csv", ROWS, "csv")
    ref = D.register(f, **COLS)
    stored = next((tmp_path / "cache" / "data").glob("registered-*.npz"))
    raw = bytearray(stored.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    stored.write_bytes(bytes(raw))
    msg = _err(D.load_texts, ref)
    assert "unusable" in msg and "register its source again" in msg
    assert D.register(f, **COLS) == ref and len(D.load_texts(ref)) == 12  # repaired
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "other"))
    msg = _err(D.load_texts, ref)
    assert "not registered in this cache" in msg and "W2S_CACHE_DIR" in msg
    assert D.dataset_identity(ref)["registered"] == ref[6:]  # keys need no file


def test_plain_path_identity_unchanged(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text("\n".join(json.dumps({"text": f"t{i}", "label": i % 2}) for i in range(6)))
    assert D.dataset_identity(f) == {"local_sha256": cache.content_fingerprint(f), "data_format": 1}
    assert D.dataset_identity(str(f)) == D.dataset_identity(f)


# ============================================================================ sizes for any K


def _k_class(counts: list[int]) -> D.TextDataset:
    texts = [f"class {c} example {i}" for c, n in enumerate(counts) for i in range(n)]
    ys = [c for c, n in enumerate(counts) for _ in range(n)]
    return D.TextDataset.from_records("k", texts, ys, n_classes=len(counts))


@given(
    st.lists(st.integers(1, 40), min_size=2, max_size=6),
    st.tuples(*[st.integers(0, 5)] * 4).filter(lambda f: f[0] and f[1] and f[3]),
)
def test_max_sizes_fit_and_are_the_largest_in_proportion(counts, fractions):
    ds = _k_class(counts)
    k, m = len(counts), min(counts)
    total = sum(fractions)
    try:
        sizes = D.max_sizes(ds, fractions)
    except ValueError as err:
        assert any(f and m * f < total for f in fractions) and "too small" in str(err)
        return
    got = [sizes.weak_train, sizes.w2s_train, sizes.val, sizes.test]
    assert all(n % k == 0 for n in got) and sum(got) <= k * m
    for n, f in zip(got, fractions, strict=True):  # one more per class would exceed the share
        assert n // k <= m * f / total < n // k + 1
    sp = D.make_splits(ds, sizes, seed=0)
    for name, s in sp.as_dict().items():
        assert np.bincount(s.labels, minlength=k).tolist() == [getattr(sizes, name) // k] * k


def test_impossible_sizes_say_which_sizes_fit():
    ds = _k_class([10, 30, 20])
    msg = _err(D.make_splits, ds, D.SplitSizes(9, 9, 3, 10), seed=0)
    assert "multiple of n_classes=3" in msg and "use 9 or 12" in msg
    big = D.SplitSizes(12, 12, 6, 9)
    msg = _err(D.make_splits, ds, big, seed=0)
    best = D.max_sizes(ds, big)
    assert best == D.SplitSizes(9, 9, 3, 6)  # floor(10 * f / 39) per class, times 3
    assert "class counts [10, 30, 20]" in msg and "at most 10 per class" in msg
    assert "3 x 10 = 30" in msg and f"{best} (max_sizes(ds, sizes))" in msg
    D.make_splits(ds, best, seed=0)
    msg = _err(D.make_splits, ds, D.SplitSizes(30, 30, 3, 30), seed=0)  # val: 0 at 3/93
    assert f"{D.max_sizes(ds)} (max_sizes(ds))" in msg


# ============================================================================ CLI


def test_cli_register_info_and_errors(tmp_path, capsys):
    f = _write(tmp_path / "m.csv", ROWS, "csv")
    argv = ["data", "register", str(f), "--text-column", "review", "--label-column", "sentiment"]
    assert cli.main(argv) == 0
    out = capsys.readouterr()
    ref = out.out.strip()
    assert D.is_reference(ref) and "3 classes (neg, neutral, pos)" in out.err
    assert cli.main(["data", "info", ref]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_classes"] == 3 and info["label_names"] == ["neg", "neutral", "pos"]
    assert info["class_counts"] == [4, 4, 4] and info["max_sizes"] is None
    assert "too small" in info["max_sizes_note"]  # 4 per class: weak_train gets floor(0.8) = 0
    assert cli.main(["data", "info", str(f), "--label-column", "sentiment"]) == 2
    assert "no text column 'text'" in capsys.readouterr().err
    assert cli.main(["data", "info", ""]) == 2
    assert "empty" in capsys.readouterr().err


# ============================================================================ hub offline


def _proxy_server(reply: bytes | None) -> tuple[str, threading.Thread]:
    """A localhost 'proxy' that answers one CONNECT with ``reply`` (None: a closed port)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    if reply is None:
        srv.close()
        worker = threading.Thread(target=lambda: None)
        worker.start()
        return f"http://127.0.0.1:{port}", worker

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(reply)
        srv.close()

    srv.listen(1)
    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    return f"http://127.0.0.1:{port}", worker


@pytest.mark.parametrize(
    "reply, reachable",
    [
        (None, False),
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", False),
        (b"HTTP/1.1 200 Connection established\r\n\r\n", True),
    ],
)
def test_hub_probe_goes_through_the_proxy(monkeypatch, reply, reachable):
    url, worker = _proxy_server(reply)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", url)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    t0 = time.monotonic()
    assert hub.hub_reachable(timeout_s=2.0) is reachable
    assert time.monotonic() - t0 < 3
    worker.join(2)


def test_hub_dataset_behind_a_dead_proxy_fails_fast_with_a_whole_message(monkeypatch, tmp_path):
    """Before: 28 s of retries through a refused proxy; now the probe sees it in milliseconds."""
    datasets = pytest.importorskip("datasets")
    url, _ = _proxy_server(None)
    for var in ("https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", url)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    t0 = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        D.load_texts("boolq")
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert msg.startswith("dataset 'boolq' (google/boolq) needs the internet")
    assert msg.endswith("sarcasm, rotten_tomatoes, quartz.")
