"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Every write goes to a temporary file in the destination's folder, which is renamed over the
destination at the end (a rename within one filesystem is atomic). The temporary file gets the
mode `open()` would give a new file (mkstemp's 0o600 would make results private to the user),
and is removed if the write fails.
"""

import contextlib
import os
import tempfile

import numpy as np


def umask_mode():
    """0o666 less the process umask: the mode `open()` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path next to `path` (same extension); on success it is renamed to
    `path`, on failure removed. For writers that want a file name (Keras, matplotlib)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    suffix = base[base.index("."):] if "." in base else ""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(text)


def atomic_save_npz(path, arrays):
    """Saves `arrays` ({name: array}) to `path` (.npz) atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
