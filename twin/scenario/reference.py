"""The scenario-file reference, generated from the pydantic models so it cannot drift.

``python -m twin.scenario.reference`` prints the markdown table the README carries for the
``operations:`` section; a test fails when the README's copy differs from the models.
"""

from __future__ import annotations

import types
import typing
from decimal import Decimal

from pydantic import BaseModel

from twin.core.allocation import STRATEGIES
from twin.scenario.model import ClosureSpec, DateDemandSpec, DayFactorSpec, OperationsSpec


def _models(annotation: object) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, dict, tuple):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _default(field: typing.Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return "—"
    value = field.default
    if value is None:
        return "none"
    if isinstance(value, Decimal):
        return str(value)
    text = repr(value)
    return text if len(text) <= 30 else "…"


def rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str]]:
    """(dotted key, default, meaning) for every field, depth first; distributions stay leaves."""
    out: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}"
        subs = [m for m in _models(field.annotation) if m.__module__ != "twin.scenario.dists"]
        meaning = field.description or ""
        if subs and not meaning:
            meaning = ((subs[0].__doc__ or "").strip().splitlines() or [""])[0]
        out.append((path, _default(field), meaning.replace("|", "/")))
        for sub in subs:
            out.extend(rows(sub, path))
    return out


def key_table(*sections: tuple[type[BaseModel], str]) -> str:
    """A markdown table of every key of the (model, key prefix) ``sections``, one after the
    other: key, default, meaning."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for model, prefix in sections:
        lines += [f"| `{k}` | {d} | {m} |" for k, d, m in rows(model, prefix)]
    return "\n".join(lines) + "\n"


def operations_reference() -> str:
    return key_table((OperationsSpec, "operations"))


def closures_reference() -> str:
    """The ``facility.closures`` table and the allocation strategies (docs/scenarios.md)."""
    lines = ["| `facility.strategy` | meaning |", "|---|---|"]
    for name, cls in STRATEGIES.items():
        first = ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        lines.append(f"| `{name}` | {first.replace('|', '/')} |")
    return key_table((ClosureSpec, "facility.closures[]")) + "\n" + "\n".join(lines) + "\n"


def state_reference() -> str:
    """The start-state file's keys as a markdown table (docs/start_state.md quotes it; a test
    checks). Lives here, not in :mod:`twin.scenario.state`, so the schema never imports its
    own documentation generator (which imports the scenario model: a cycle)."""
    from twin.scenario.state import StartState

    return key_table((StartState, "state"))


def claims_reference() -> str:
    """The ``claims:`` section's keys as a markdown table (docs/locking.md quotes it)."""
    from twin.scenario.claims import ClaimsSpec

    return key_table((ClaimsSpec, "claims"))


def demand_reference() -> str:
    """The ``demand[].day_factor`` and ``demand[].dates`` table (docs/scenarios.md)."""
    return key_table((DayFactorSpec, "demand[].day_factor"), (DateDemandSpec, "demand[].dates[]"))


if __name__ == "__main__":  # pragma: no cover
    import sys

    if sys.argv[1:] == ["closures"]:
        print(closures_reference(), end="")
    elif sys.argv[1:] == ["state"]:
        print(state_reference(), end="")
    elif sys.argv[1:] == ["demand"]:
        print(demand_reference(), end="")
    elif sys.argv[1:] == ["claims"]:
        print(claims_reference(), end="")
    else:
        print(operations_reference(), end="")
