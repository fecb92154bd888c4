"""Reading a saved-predictions file safely (:func:`check_file`): a regular file, a real ``.npz``
archive, declared sizes bounded before anything is read."""

from __future__ import annotations

import math
import os
import stat
import zipfile
from typing import Any

import numpy as np

from w2s_utils.check.results import ARRAYS, REQUIRED, SMCE_TIME_LIMIT, check_arrays

__all__ = ["MAX_ELEMENTS", "check_file"]

#: Most elements one array of a checked file may declare (2^27: 1 GiB once read as float64).
MAX_ELEMENTS = 1 << 27


def _check_regular_file(path: str, how: str) -> None:
    """Reject what is not a readable regular file *before* opening it (a FIFO or a device such as
    /dev/zero would block or never end)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file; check the path") from None
    except OSError as err:
        raise ValueError(
            f"{path}: cannot be inspected ({err.strerror or err}); check the path and its "
            "permissions"
        ) from err
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path}: is a directory; pass an .npz file")
    if not stat.S_ISREG(mode):
        kinds = (
            (stat.S_ISFIFO, "a FIFO (named pipe)"),
            (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"),
            (stat.S_ISSOCK, "a socket"),
        )
        kind = next((text for test, text in kinds if test(mode)), "not a regular file")
        raise ValueError(f"{path}: is {kind}, not a regular file; save the arrays to a file: {how}")
    if st.st_size == 0:
        raise ValueError(f"{path}: is empty (0 bytes); {how}")


def _memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _bound_declared_sizes(path: str, names: set[str]) -> None:
    """Read the shape each member ``names`` declares in its ``.npy`` header (without reading its
    data) and refuse sizes that could not be held, before anything is allocated: more than
    :data:`MAX_ELEMENTS` elements in one array, or more than a quarter of this machine's memory
    for all of them as float64 (a small compressed file can declare terabytes)."""
    how = "check the file; to check more predictions, call check.check_arrays on subsets"
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename.removesuffix(".npy")
                if name not in names:
                    continue
                with zf.open(info) as fh:
                    try:
                        version = np.lib.format.read_magic(fh)
                        read = (
                            np.lib.format.read_array_header_1_0
                            if version == (1, 0)
                            else np.lib.format.read_array_header_2_0
                        )
                        shape = read(fh)[0]
                    except ValueError as err:
                        raise ValueError(
                            f"{path}: array {name!r} has no valid .npy header ({err}); {how}"
                        ) from err
                elements = math.prod(int(d) for d in shape)
                if elements > MAX_ELEMENTS:
                    raise ValueError(
                        f"{path}: array {name!r} declares shape {tuple(shape)}, {elements:.3g} "
                        f"elements, more than the {MAX_ELEMENTS:,} allowed per array; {how}"
                    )
                total += 8 * elements
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npz archive ({err}); {how}") from err
    memory = _memory_bytes()
    if memory is not None and total > memory // 4:
        raise ValueError(
            f"{path}: its arrays declare {total / 2**30:.1f} GiB as float64, more than a quarter "
            f"of this machine's {memory / 2**30:.1f} GiB of memory; {how}"
        )


def check_file(
    path: str | os.PathLike[str],
    *,
    n_bins: int = 15,
    gamma: float | None = None,
    clip: bool = False,
    smce_time_limit: float = SMCE_TIME_LIMIT,
) -> dict[str, Any]:
    """Load an ``.npz`` file (see the module docstring: what ``run --save-predictions`` writes)
    and run :func:`check_arrays` on it; the result also has ``file``."""
    path = os.fspath(path)
    how = "save one with numpy.savez(path, weak=..., student=..., labels=...)"
    _check_regular_file(path, how)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as err:
        raise ValueError(
            f"{path}: cannot be read ({err.strerror or err}); check its permissions, or copy it "
            "to a readable place"
        ) from err
    if magic == b"\x93NUMPY":
        raise ValueError(f"{path}: holds a single array (.npy), not an .npz archive; {how}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable .npz archive (not a zip file); {how}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable .npz archive ({err}); {how}") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: holds a single array (.npy), not an .npz archive; {how}")
    with archive:
        names = set(archive.files)
        _bound_declared_sizes(path, names & set(ARRAYS))
        missing = [k for k in REQUIRED if k not in names]
        if not names & {"labels", "f_star"}:
            missing.append("labels (or f_star)")
        if missing:
            raise ValueError(
                f"{path}: missing array(s) {', '.join(missing)}; found "
                f"{', '.join(sorted(names)) or 'none'}. Required: weak, student and labels "
                f"and/or f_star; optional: ceiling, ids, label_names"
            )
        try:
            arrays = {k: archive[k] for k in ARRAYS if k in names}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: cannot read an array ({err})") from err
    weak, student = arrays.pop("weak"), arrays.pop("student")
    ceiling = arrays.pop("ceiling", None)
    out = check_arrays(
        weak,
        student,
        ceiling,
        **arrays,
        n_bins=n_bins,
        gamma=gamma,
        clip=clip,
        smce_time_limit=smce_time_limit,
    )
    extra = sorted(names - set(ARRAYS))
    if extra:
        out["notes"].append(f"ignored array(s): {', '.join(extra)}")
    out["file"] = path
    return out
