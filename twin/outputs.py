"""Output folders whose files are never half-written and never from two writers at once.

Every file a command writes (tables, JSON, PNG, HTML) goes through :func:`atomic_write`: it is
written under a hidden temporary name in the same folder and renamed over its final name. A
rename within one file system is atomic, so a reader sees the old file or the new one, never a
prefix of it, and a writer killed mid-file leaves only a ``.NAME.<pid>-<hex>.tmp.EXT`` file
that :func:`remove_temporaries` clears.

Two writers of the same folder would still interleave whole files (one run's vehicles beside
the other's summary). :func:`claim` prevents that: it holds an exclusive ``flock`` on
``.parktwin.lock`` in the folder for as long as the command writes there, and the file says
which process holds it. The kernel drops the lock when its holder dies, so a lock file left by
a ``kill -9`` (a stale lock: its pid no longer runs) is simply taken over; a live holder makes
the second writer stop at the start with one line. Claims nest within one process, so a
command can claim its folder before simulating and the writer it calls can claim it again.
The lock is ``flock`` (POSIX): on a network file system that lacks it, use local folders.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: The writer's lock file, inside the folder it protects.
LOCK_NAME = ".parktwin.lock"

#: Table formats every writer offers.
FORMATS = ("parquet", "csv")


class OutputError(Exception):
    """An output folder cannot be used (not a folder, not writable, held by another writer,
    holding another run): a user error, reported in one line with exit code 2."""


# -- files ------------------------------------------------------------------------------------
def _temporary(path: Path) -> Path:
    """A hidden name beside ``path`` that keeps its extension (matplotlib and pandas choose the
    format from it) and is unique per process and call."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    ``path`` therefore either keeps its old content or has the complete new one; a failure in
    ``write`` removes the temporary file and leaves ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any, **dumps: Any) -> Path:
    """Write ``data`` as indented JSON (sorted keys unless told otherwise) atomically."""
    dumps = {"indent": 2, "sort_keys": True, **dumps}
    return write_text(path, json.dumps(data, **dumps) + "\n")


def write_frame(frame: pd.DataFrame, path: str | Path, fmt: str | None = None) -> Path:
    """Write a table as parquet or CSV (``fmt``, default from the extension) atomically."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt == "parquet":
        return atomic_write(path, lambda p: frame.to_parquet(p, index=False))
    if fmt == "csv":
        return atomic_write(path, lambda p: frame.to_csv(p, index=False))
    raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")


def save_figure(fig: Figure, path: str | Path, **savefig: Any) -> Path:
    """``fig.savefig`` atomically, in the format the final name's extension says."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    return atomic_write(path, lambda p: fig.savefig(p, format=fmt, **savefig))


def remove_temporaries(folder: str | Path, recursive: bool = False) -> int:
    """Delete temporary files a killed writer left in ``folder``; returns how many."""
    prefix = "**/" if recursive else ""
    removed = 0
    # ``.NAME.tmp`` is how writers before this module named them
    for pattern in (".*.tmp.*", ".*.tmp"):
        for tmp in Path(folder).glob(prefix + pattern):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


# -- folders ----------------------------------------------------------------------------------
def check_folder(folder: str | Path, option: str = "--out") -> Path:
    """Create ``folder`` if needed and make sure files can be written there.

    Called before any simulation, so a path that cannot be a folder (an existing file,
    ``/proc/x``, ``/dev/null/sub``, a read-only place) costs the user nothing. Raises
    :class:`OutputError` naming the path and the reason.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{_named(option, folder)} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _temporary(folder / "probe")
        probe.touch()
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(
            f"{_named(option, folder)}: cannot be used as an output folder ({reason})"
        ) from None
    return folder


def _named(option: str, folder: Path) -> str:
    """``--out DIR`` in messages, or just ``DIR`` when the folder is not an option's value."""
    return f"{option} {folder}" if option else str(folder)


#: This process's claims: (folder, thread) -> (lock fd, depth). Per thread, so two threads of
#: one process writing the same folder exclude each other like two processes do.
_held: dict[tuple[Path, int], tuple[int, int]] = {}
_held_guard = threading.Lock()


def _holder(path: Path) -> str:
    """Who the lock file says holds it (for the refusal message)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return "another process"
    return f"process {text[0]}" if text and text[0].isdigit() else "another process"


def _lock(folder: Path, option: str) -> int:
    """Take the folder's lock (non-blocking) and write our pid into it; returns the fd."""
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{_named(option, folder)}: {_holder(path)} is writing this folder now; "
                "wait for it to finish or choose another folder"
            ) from None
        # The previous holder may have unlinked the file between our open and our flock: then
        # we hold a lock nobody else can see, so start again on the file now at ``path``.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextlib.contextmanager
def claim(folder: str | Path, option: str = "--out") -> Iterator[Path]:
    """Hold ``folder`` for writing: checked (:func:`check_folder`), locked, and released after.

    Raises :class:`OutputError` at once if another process (or thread) holds it. A lock file
    whose process has died holds no lock any more and is taken over. Nested claims of the same
    folder in one thread share the outer one.
    """
    folder = check_folder(folder, option)
    key = (folder.resolve(), threading.get_ident())
    with _held_guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
        else:
            _held[key] = (_lock(folder, option), 1)
    try:
        yield folder
    finally:
        with _held_guard:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
            else:
                del _held[key]
                with contextlib.suppress(FileNotFoundError):
                    (folder / LOCK_NAME).unlink()  # while still locked: see the inode check
                os.close(fd)
