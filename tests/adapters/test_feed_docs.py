"""docs/feed_events.md's field tables are the schema's: regenerate, compare."""

from __future__ import annotations

from pathlib import Path

from parktwin.adapters.events import EVENT_TYPES, STANDARD, doc_block, markdown_tables

DOC = Path(__file__).resolve().parents[2] / "docs" / "feed_events.md"


def test_doc_tables_match_the_schema() -> None:
    assert doc_block(DOC.read_text(encoding="utf-8")) == markdown_tables(), (
        "docs/feed_events.md drifted from adapters/events.py: run "
        "python -m parktwin.adapters.events docs/feed_events.md"
    )


def test_every_field_names_its_standard() -> None:
    fields = {name for model in EVENT_TYPES for name in model.model_fields}
    assert fields <= set(STANDARD), sorted(fields - set(STANDARD))
