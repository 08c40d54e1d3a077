"""Keep the command output and figures quoted in README.md and docs/*.md true to the code.

Prose that quotes a number ("B raises revenue by $4,209/day") drifts as soon as the model
changes; nothing fails, and readers trust a stale number. So quoted output is *generated*: a
block in the markdown names the command that produced it, and this script re-runs the command
and rewrites the block. Numbers quoted inside sentences point at a block and a regular
expression, and are rewritten from the block's output, so they cannot disagree with it.

Markup (HTML comments, invisible when the markdown is rendered)::

    <!-- quoted NAME [cheap]: COMMAND -->
    ```text
    ...the command's output, written by this script...
    ```
    <!-- /quoted -->

    ... revenue rises by <!-- q NAME "raises revenue by (\\S+/day)" -->$4,209/day<!-- /q --> ...

Several groups make one figure with a template:
``<!-- q NAME "(\\S+) … (\\S+)" -> "\\1 to \\2" -->``.
A figure written as code (`` `...` ``) keeps its backticks; the comments sit outside them.

``COMMAND`` runs with bash in a scratch folder where ``scenarios/`` and ``scripts/`` point at
the repository's (so ``--out out/x`` never touches the working tree; figures no single command
prints come from ``python scripts/doc_figures.py ...``), with this interpreter's ``bin`` first on
``PATH`` (so ``parktwin`` is the editable install), no colour and the CLI's non-terminal width.
Trailing spaces are trimmed. ``cheap`` marks commands quick enough for the test suite
(tests/test_quoted_figures.py re-runs those and checks every inline figure against its block).

Usage (from the repository root)::

    python scripts/quote_figures.py            # check: exit 1 naming every stale block/figure
    python scripts/quote_figures.py --update   # re-run every command and rewrite the docs
    python scripts/quote_figures.py --update --only NAME [--only NAME2]
    python scripts/quote_figures.py --cheap    # only the commands marked cheap
    python scripts/quote_figures.py --no-run   # only inline figures against their blocks

``--update`` with no ``--only``/``--cheap``/files also re-executes ``notebooks/*.ipynb`` in place
(a Jupyter kernel), so the outputs stored in the notebooks show today's numbers too; the
notebooks' own prose reads its numbers from the cells, and tests/test_notebooks.py runs them.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCK = re.compile(
    r"<!-- quoted (?P<name>[\w.-]+)(?P<cheap> cheap)?: (?P<command>.+?) -->\n"
    r"```text\n(?P<output>.*?)```\n<!-- /quoted -->",
    re.S,
)
INLINE = re.compile(
    r'<!-- q (?P<name>[\w.-]+) "(?P<pattern>[^"]+)"(?: -> "(?P<template>[^"]+)")? -->'
    r"(?P<value>.*?)<!-- /q -->",
    re.S,
)


@dataclass
class Block:
    """One quoted command and the output the document shows for it."""

    file: Path
    name: str
    command: str
    cheap: bool
    output: str


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every docs/*.md: the documents readers take numbers from."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def find_blocks(files: list[Path]) -> dict[str, Block]:
    """Every quoted block by name; a name used twice is an error (inline figures need one)."""
    blocks: dict[str, Block] = {}
    for path in files:
        for m in BLOCK.finditer(path.read_text(encoding="utf-8")):
            name = m["name"]
            if name in blocks:
                raise SystemExit(f"{path}: quoted block name {name!r} is used twice")
            blocks[name] = Block(path, name, m["command"], bool(m["cheap"]), m["output"])
    return blocks


def run_command(command: str, root: Path = ROOT) -> str:
    """The command's stdout+stderr as a reader sees it, run in a scratch folder."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(NO_COLOR="1", TERM="dumb", PYTHONHASHSEED="0")
    env.pop("COLUMNS", None)
    env.pop("FORCE_COLOR", None)
    with tempfile.TemporaryDirectory(prefix="quoted-") as tmp:
        for shared in ("scenarios", "scripts"):  # scripts: python scripts/doc_figures.py ...
            (Path(tmp) / shared).symlink_to(root / shared)
        proc = subprocess.run(
            ["bash", "-c", "set -o pipefail; " + command],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if proc.returncode != 0:
        raise RuntimeError(
            f"quoted command failed (exit {proc.returncode}): {command}\n{proc.stderr[-2000:]}"
        )
    text = proc.stdout + proc.stderr
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def inline_value(
    blocks: dict[str, Block], name: str, pattern: str, where: str, template: str | None = None
) -> str:
    """The figure an inline quote takes from its block: the regex's first group, or
    ``template`` with ``\\1``, ``\\2`` ... filled from its groups."""
    if name not in blocks:
        raise ValueError(f"{where}: inline figure refers to unknown quoted block {name!r}")
    m = re.search(pattern, blocks[name].output)
    if not m:
        raise ValueError(f"{where}: {pattern!r} matches nothing in the output of {name!r}")
    return m.expand(template) if template else m.group(1)


def render(path: Path, blocks: dict[str, Block]) -> str:
    """The document's text with every block and inline figure as ``blocks`` say."""
    text = path.read_text(encoding="utf-8")

    def block(m: re.Match[str]) -> str:
        b = blocks[m["name"]]
        return m[0].replace("```text\n" + m["output"], "```text\n" + b.output, 1)

    def inline(m: re.Match[str]) -> str:
        value = inline_value(blocks, m["name"], m["pattern"], path.name, m["template"])
        if len(m["value"]) > 1 and m["value"][0] == m["value"][-1] == "`":
            value = f"`{value}`"  # a figure shown as code keeps its code span
        return m[0][: m.start("value") - m.start()] + value + "<!-- /q -->"

    return INLINE.sub(inline, BLOCK.sub(block, text))


def refresh(blocks: dict[str, Block], names: set[str] | None, cheap_only: bool) -> list[str]:
    """Re-run the selected blocks' commands in place; returns the names re-run."""
    done = []
    for b in blocks.values():
        if (names and b.name not in names) or (cheap_only and not b.cheap):
            continue
        print(f"running {b.name}: {b.command}", file=sys.stderr, flush=True)
        b.output = run_command(b.command)
        done.append(b.name)
    return done


def execute_notebooks(root: Path = ROOT) -> list[Path]:
    """Re-run every notebook top to bottom and store its outputs (numbers shown to readers)."""
    import nbclient
    import nbformat

    done = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        print(f"executing {path.relative_to(root)}", file=sys.stderr, flush=True)
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.metadata.pop("execution", None)  # old timestamps: diffs that say nothing
        client = nbclient.NotebookClient(
            nb,
            timeout=1800,
            kernel_name="python3",
            record_timing=False,  # no timestamps: a re-run without changes leaves no diff
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
        nbformat.write(nb, path)
        done.append(path)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the documents")
    parser.add_argument("--only", action="append", help="only this block (repeatable)")
    parser.add_argument("--cheap", action="store_true", help="only blocks marked cheap")
    parser.add_argument(
        "--no-run", action="store_true", help="run nothing: check inline figures against blocks"
    )
    parser.add_argument("files", nargs="*", type=Path, help="default: README.md docs/*.md")
    args = parser.parse_args(argv)
    files = [p.resolve() for p in args.files] or doc_files()
    blocks = find_blocks(files)
    unknown = set(args.only or ()) - set(blocks)
    if unknown:
        print(f"no quoted block named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if not args.no_run:
        refresh(blocks, set(args.only or ()), args.cheap)
    if args.update and not (args.only or args.cheap or args.files or args.no_run):
        execute_notebooks()
    stale = 0
    for path in files:
        old = path.read_text(encoding="utf-8")
        try:
            new = render(path, blocks)
        except ValueError as error:  # an inline pattern that no longer matches its output
            print(f"error: {error}", file=sys.stderr)
            return 2
        if new == old:
            continue
        if args.update:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path}", file=sys.stderr)
        else:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    old.splitlines(True), new.splitlines(True), str(path), f"{path} (current)"
                )
            )
    if stale:
        fix = "python scripts/quote_figures.py --update"
        print(f"{stale} document(s) quote stale output; run: {fix}", file=sys.stderr)
        return 1
    print(f"{len(blocks)} quoted block(s) checked", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
