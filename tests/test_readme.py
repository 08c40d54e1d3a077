"""The README's generated scenario reference must match the models it documents."""

from __future__ import annotations

import re
from pathlib import Path

from twin.scenario.reference import operations_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_operations_reference_in_readme_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- operations-reference:start -->\n(.*?)<!-- operations-reference:end -->", text, re.S
    )
    assert match, "README lost its operations reference markers"
    assert match.group(1) == operations_reference(), (
        "README's operations table is stale: regenerate it with "
        "`python -m twin.scenario.reference` and paste it between the markers"
    )


def test_every_operations_key_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    for key in (
        "operations.reservations.no_show_probability",
        "operations.payments.outages",
        "operations.sensors.displays",
        "operations.permits.monthly",
    ):
        assert f"`{key}" in text


def test_every_shipped_scenario_is_named_in_the_readme_list() -> None:
    """`downtown_closures` was shipped (and documented in docs/scenarios.md) but missing from
    the README's list of shipped scenarios, where a new user looks first."""
    text = README.read_text(encoding="utf-8")
    listed = text[text.index("Shipped scenarios:") :].split("\n\n", 1)[0]
    root = README.parent / "scenarios"
    for path in [*root.glob("*.yaml"), *root.glob("scale/*.yaml")]:
        name = path.relative_to(root).with_suffix("").as_posix()
        assert f"`{name}`" in listed, f"{name} is shipped but not in the README's list"
