"""Figures quoted in README.md and docs/*.md are the ones the code produces today.

The quoting is done by ``scripts/quote_figures.py``: each block of output in the documents
names its command, and numbers in sentences point at a block. Here every inline figure is
checked against its block (no simulation), and the commands marked ``cheap`` are re-run. The
others are re-run by ``python scripts/quote_figures.py`` (the integrator's ``--update`` after a
change of model numbers).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("quote_figures", ROOT / "scripts/quote_figures.py")
assert _spec and _spec.loader
qf = importlib.util.module_from_spec(_spec)
sys.modules["quote_figures"] = qf
_spec.loader.exec_module(qf)

FIX = "python scripts/quote_figures.py --update"


def test_documents_quote_generated_blocks() -> None:
    blocks = qf.find_blocks(qf.doc_files())
    assert {"airport-cmp", "sweep-downtown", "opt-downtown"} <= set(blocks)
    assert any(b.cheap for b in blocks.values())
    for b in blocks.values():
        assert b.output.strip(), f"{b.file.name}: quoted block {b.name} is empty; run `{FIX}`"


def test_inline_figures_agree_with_their_blocks() -> None:
    blocks = qf.find_blocks(qf.doc_files())
    for path in qf.doc_files():
        assert qf.render(path, blocks) == path.read_text(encoding="utf-8"), (
            f"{path.name}: a figure quoted in the text differs from its block; run `{FIX}`"
        )


@pytest.mark.parametrize(
    "name", [b.name for b in qf.find_blocks(qf.doc_files()).values() if b.cheap]
)
def test_cheap_quoted_commands_still_print_what_the_docs_show(name: str) -> None:
    block = qf.find_blocks(qf.doc_files())[name]
    assert qf.run_command(block.command) == block.output, (
        f"{block.file.name}: output of `{block.command}` changed; run `{FIX} --only {name}`"
    )


def test_stale_figure_is_detected_and_rewritten(tmp_path: Path) -> None:
    """The check can fail: a doctored number is found, and --update puts the real one back."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        'Revenue <!-- q demo "revenue (\\S+)" -->`$9`<!-- /q --> a day.\n\n'
        "<!-- quoted demo cheap: printf 'revenue $12\\n' -->\n```text\nrevenue $9\n```\n"
        "<!-- /quoted -->\n",
        encoding="utf-8",
    )
    assert qf.main(["--no-run", str(doc)]) == 0  # consistent with itself, nothing re-run
    assert qf.main(["--cheap", str(doc)]) == 1  # the command prints $12 now
    assert qf.main(["--cheap", "--update", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "-->`$12`<!-- /q -->" in text and "```text\nrevenue $12\n```" in text
    assert qf.main(["--cheap", str(doc)]) == 0


def test_derived_figure_blocks_name_a_known_computation() -> None:
    """Blocks quoting ``scripts/doc_figures.py NAME`` name one of its computations (checked
    without running them: they take minutes; ``python scripts/quote_figures.py`` runs them)."""
    spec = importlib.util.spec_from_file_location("doc_figures", ROOT / "scripts/doc_figures.py")
    assert spec and spec.loader
    doc_figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc_figures)
    used = [
        b.command.split()[-1]
        for b in qf.find_blocks(qf.doc_files()).values()
        if b.command.startswith("python scripts/doc_figures.py ")
    ]
    assert len(used) >= 10
    assert set(used) <= set(doc_figures.FIGURES), set(used) - set(doc_figures.FIGURES)
    assert doc_figures.main(["no-such-figure"]) == 2
