"""What an installed ParkTwin holds besides code: the example scenarios, the locking study and
the regression baselines, and which optional extra brings each heavy dependency.

The files live in the repository's ``scenarios/`` and ``reports/baselines/`` (the source of truth)
and are installed inside the ``parktwin`` package (see setup.py), so every default path is found
through the package, never beside a source file or in the working directory: the same lookup
works in a wheel, in a build from the sdist and in an editable install (where it finds the
repository's own folders). Light on purpose: ``parktwin examples`` and ``--help`` import it.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from rich.table import Table

#: What each kind of shipped file is, by its folder under the examples, and how to run it.
KINDS: dict[str, tuple[str, str]] = {
    "": ("scenario", "parktwin run {path}"),
    "scale": ("scenario", "parktwin run {path}"),
    "studies": ("study", "parktwin locking {path}"),
    "sweeps": ("sweep", "parktwin sweep --file {path}"),
}

#: The optional extra (pyproject.toml) that installs each top-level module a command may need.
EXTRAS: dict[str, str] = {
    "numpy": "sim",
    "scipy": "sim",
    "pandas": "sim",
    "pyarrow": "sim",
    "simpy": "sim",
    "pydantic": "sim",
    "yaml": "sim",
    "dask": "dask",
    "distributed": "dask",
    "matplotlib": "plot",
    "paho": "mqtt",
    "psycopg": "stores",
    "psycopg_pool": "stores",
    "redis": "stores",
    "statsmodels": "backtest",
}


class ExamplesError(Exception):
    """The examples cannot be copied there (a file is in the way, not a folder): user error."""


def package_root() -> Path:
    """The installed ``parktwin`` package (in an editable install: the repository root).

    ``parktwin`` is a namespace package (its folder is the repository root, which has no
    ``__init__.py``), so files() gives a MultiplexedPath, whose children are plain paths.
    Python 3.11's namespace reader rejects the placeholder entry that setuptools' editable
    finder adds to such a package's ``__path__``: there the real folder is taken from the path.
    """
    try:
        scenarios = importlib.resources.files("parktwin") / "scenarios"
    except NotADirectoryError:
        import parktwin

        return next(Path(p) for p in parktwin.__path__ if Path(p).is_dir())
    return Path(str(scenarios)).parent


def examples_dir() -> Path:
    """Shipped scenarios (``*.yaml``) with ``studies/``, ``sweeps/`` and ``scale/``."""
    return package_root() / "scenarios"


def baselines_dir() -> Path:
    """The regression gate's baselines of the shipped scenarios (``parktwin regress``)."""
    return package_root() / "reports" / "baselines"


def locking_study() -> Path:
    """The default study of ``parktwin locking``."""
    return examples_dir() / "studies" / "locking_study.yaml"


def gate_scenarios() -> list[Path]:
    """The scenarios the regression gate checks by default: every top-level shipped scenario."""
    return sorted(examples_dir().glob("*.yaml"))


@dataclass(frozen=True)
class Example:
    """One shipped file: its path under the examples folder, what it is and what it shows."""

    name: str
    kind: str
    command: str
    summary: str


def _summary(path: Path) -> str:
    """The first sentence of the file's leading comment: what the example is about."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.removeprefix("#").strip()
        if not line.startswith("#") or not text:
            break
        lines.append(text)
    paragraph = " ".join(lines)
    first = re.match(r"(.+?[.?!])(?=\s|$)", paragraph)
    return first.group(1) if first else paragraph


def examples() -> list[Example]:
    """Every shipped example, top-level scenarios first, then by folder."""
    root = examples_dir()
    found = []
    for path in sorted(root.rglob("*.yaml"), key=lambda p: (len(p.parts), p.as_posix())):
        name = path.relative_to(root).as_posix()
        folder = "" if path.parent == root else path.parent.relative_to(root).as_posix()
        kind, command = KINDS.get(folder, ("file", "{path}"))
        found.append(Example(name, kind, command, _summary(path)))
    return found


def copy_examples(dest: Path) -> list[Path]:
    """Copy every example to ``dest`` (keeping ``studies/``, ``sweeps/``...: a sweep file names
    its scenario by a relative path); returns the written paths.

    Refuses before writing anything when ``dest`` is not a folder or one of the files exists
    (a user's edited copy is never overwritten). Each file is written to a temporary name in its
    folder and renamed into place, so an interrupted copy leaves no half-written scenario.
    """
    if dest.exists() and not dest.is_dir():
        raise ExamplesError(f"{dest} exists and is not a folder")
    chosen = examples()
    clash = [dest / e.name for e in chosen if (dest / e.name).exists()]
    if clash:
        more = f" (and {len(clash) - 1} more)" if len(clash) > 1 else ""
        raise ExamplesError(f"{clash[0]} already exists{more}: copy to another folder")
    written = []
    for example in chosen:
        target = dest / example.name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            with os.fdopen(fd, "wb") as out, (examples_dir() / example.name).open("rb") as src:
                shutil.copyfileobj(src, out)
            os.replace(tmp, target)
        except OSError as exc:
            raise ExamplesError(f"cannot write {target}: {exc.strerror or exc}") from None
        written.append(target)
    return written


def examples_table(copied_to: Path | None = None) -> Table:
    """The examples as a planner reads them: file, kind and what it shows, with the command
    that runs each kind in the caption; paths under ``copied_to`` after a copy."""
    where = copied_to if copied_to is not None else examples_dir()
    title = f"{'copied to' if copied_to is not None else 'shipped in'} {where}"
    table = Table(title=escape(title), title_justify="left", caption_justify="left")
    table.add_column("file", no_wrap=True)
    table.add_column("what", ratio=1)
    used = {}
    for example in examples():
        path = Path(example.name) if copied_to is None else copied_to / example.name
        table.add_row(escape(str(path)), f"[bold]{example.kind}[/]: {escape(example.summary)}")
        used[example.kind] = example.command.format(path="FILE")
    runs = [f"a {kind} with {escape(command)}" for kind, command in used.items()]
    table.caption = f"Run {', '.join(runs)}."
    return table


def missing_extra(exc: BaseException) -> str | None:
    """When ``exc`` comes from an optional dependency that is not installed (also when it was
    raised while handling that: a lazily imported module is left half-initialised), the
    message naming the extra that installs it; None for anything else (a real bug)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ModuleNotFoundError):
            module = (seen.name or "").partition(".")[0]
            if module in EXTRAS:
                extra = EXTRAS[module]
                return (
                    f"this command needs {module}, which is not installed; install ParkTwin "
                    f"with the '{extra}' extra: pip install 'parktwin[{extra}]' (or "
                    "'parktwin[all]')"
                )
        seen = seen.__cause__ or seen.__context__
    return None
