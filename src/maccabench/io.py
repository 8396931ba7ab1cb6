"""Writing files so that a killed job never leaves something that looks finished.

Everything is written to a temporary sibling and renamed into place only when complete
(rename is atomic on POSIX), so the final path exists only for whole files.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path next to `path`; moves it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates 0600; give the file the mode any new file gets (0666 less the umask), so
        # results on a shared cluster filesystem stay readable by the group
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_partials(folder: str | Path) -> None:
    """Delete the temporary files of writes a SIGKILL interrupted (no cleanup code runs then).
    Call it when a job starts on a folder that only that job writes."""
    for tmp in Path(folder).glob(".*.partial"):
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(x):
    import numpy as np
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def versions() -> dict:
    """Versions of the packages whose behaviour the numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version
    import platform
    out = {"python": platform.python_version()}
    for pkg in ("maccabench", "torch", "numpy", "mpe2", "pettingzoo", "h5py", "jaxmarl"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
