"""Load scenario files and turn every problem into one readable line.

A planner who mistypes a key should read ``garage.yaml: facility.levels[0].spots.REGULER: unknown
key (allowed: ...)``, not a pydantic traceback. The loader collects all problems at once so a
broken file is fixed in one pass.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from twin.scenario.model import Scenario


class ScenarioError(Exception):
    """A scenario file cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one silently."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(path: Path) -> dict:
    """Parse a YAML mapping, raising ScenarioError with line and column on syntax errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            str(path),
            [
                f"not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}): a scenario is YAML text"
            ],
        ) from None
    try:
        return parse_yaml(text, str(path))
    except ScenarioError as exc:
        hint = _DATA_FILES.get(path.suffix.lower())
        if hint is None:
            raise
        raise ScenarioError(str(path), [f"{hint} ({exc.problems[0]})"]) from None


#: What a data file given where a YAML file belongs is for (it used to say only 'YAML syntax
#: error' or 'expected a mapping ..., got str').
_DATA_FILES = {
    ".csv": "a CSV file, not a ParkTwin YAML file: fit scenarios to records with "
    "`parktwin calibrate tickets|occupancy`",
    ".jsonl": "a JSONL feed, not a ParkTwin YAML file: mirror it with `parktwin live SCENARIO "
    "--replay FILE` or replay it with `parktwin replay FILE --scenario SCENARIO`",
}


def parse_yaml(text: str, source: str = "<scenario>") -> dict:
    """Parse scenario YAML text (from a file or given directly) into its mapping, with the
    same checks and one-line messages as a file; ``source`` names it in them."""
    path = source
    line = _too_deep_line(text)
    if line is not None:  # before parsing: PyYAML's scanner is quadratic in this depth
        raise ScenarioError(str(path), [f"line {line}: {_too_deep()}"])
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except RecursionError:
        raise ScenarioError(str(path), [_too_deep()]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(str(path), [f"{where}YAML syntax error: {problem}"]) from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise ScenarioError(str(path), [f"expected a mapping of scenario keys, got {got}"])
    where = _too_deep_at(data)
    if where is not None:
        raise ScenarioError(str(path), [f"{where}: {_too_deep()}"])
    return data


#: How deep mappings and lists may nest in a file. The schema needs about 8 levels; a file
#: nested thousands deep would exhaust Python's recursion in the parser or the validation.
MAX_DEPTH = 64


def _too_deep_line(text: str) -> int | None:
    """The line where ``[``/``{`` brackets first nest deeper than MAX_DEPTH, counted as if
    none were quoted (a bound real files stay far below, found without parsing), or None."""
    if "[" not in text and "{" not in text:
        return None
    codes = np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)
    depth = np.cumsum(np.isin(codes, OPENERS).astype(np.int32) - np.isin(codes, CLOSERS))
    deep = np.flatnonzero(depth > MAX_DEPTH)
    if not len(deep):
        return None
    return int(np.count_nonzero(codes[: deep[0]] == ord("\n"))) + 1


OPENERS = np.frombuffer(b"[{", dtype=np.uint8)
CLOSERS = np.frombuffer(b"]}", dtype=np.uint8)


def _too_deep() -> str:
    return f"nested more than {MAX_DEPTH} levels deep (scenario files need fewer than 10)"


def _too_deep_at(data: Any) -> str | None:
    """The dotted path where ``data`` first nests deeper than MAX_DEPTH, or None."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path.split(".", 1)[0] or "(top level)"
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))
    return None


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, override (dotted keys, e.g. ``{"facility.strategy": "spread"}``) and validate."""
    path = Path(path)
    data = read_yaml(path)
    if overrides:
        data = apply_overrides(data, overrides, str(path))
    return validate_scenario(data, str(path), base_dir=path.parent)


def load_text(
    text: str, overrides: dict[str, Any] | None = None, source: str = "<scenario text>"
) -> Scenario:
    """A scenario from its YAML text, validated as a file is; relative trace paths are read
    from the current folder."""
    data = parse_yaml(text, source)
    if overrides:
        data = apply_overrides(data, overrides, source)
    return validate_scenario(data, source, base_dir=Path.cwd())


def load_mapping(
    data: Mapping[str, Any],
    overrides: dict[str, Any] | None = None,
    source: str = "<scenario mapping>",
) -> Scenario:
    """A scenario from a mapping of its keys (as a file would hold them), validated as a file
    is: the mapping is copied first (overrides never change the caller's), and a mapping
    nested absurdly deep is refused in one line like a file."""
    if not isinstance(data, Mapping):
        raise ScenarioError(
            source, [f"expected a mapping of scenario keys, got {type(data).__name__}"]
        )
    where = _too_deep_at(dict(data))
    if where is not None:
        raise ScenarioError(source, [f"{where}: {_too_deep()}"])
    copy = _unshared(dict(data))
    if overrides:
        copy = apply_overrides(copy, overrides, source)
    return validate_scenario(copy, source, base_dir=Path.cwd())


def validate_scenario(
    data: dict, source: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    check_kind(data, "scenario", source)
    try:
        return Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ScenarioError(source, format_errors(exc, Scenario)) from None


#: The three kinds of ParkTwin YAML file, each with the command that runs it.
KIND_COMMANDS = {
    "scenario": "parktwin run FILE",
    "sweep": "parktwin sweep --file FILE",
    "locking_study": "parktwin locking FILE",
}


def kind_of(data: Any) -> str | None:
    """Which kind of ParkTwin file a parsed mapping looks like (None: cannot tell): a locking
    study says ``kind: locking_study``, a sweep has a ``grid``, a scenario its ``demand``."""
    if not isinstance(data, Mapping):
        return None
    if data.get("kind") == "locking_study" or "offered_tps" in data:
        return "locking_study"
    if "grid" in data and "demand" not in data:
        return "sweep"
    if "demand" in data or "facility" in data or "lots" in data:
        return "scenario"
    return None


def check_kind(data: Any, expected: str, source: str) -> None:
    """One line, not one per unknown key, when a file of another kind is given: a sweep file
    to ``parktwin run``, a scenario to ``parktwin locking``, ..."""
    found = kind_of(data)
    if found is not None and found != expected:
        raise ScenarioError(
            source,
            [
                f"this is a {found.replace('_', ' ')} file, not a {expected.replace('_', ' ')}"
                f" file: run it with {KIND_COMMANDS[found].replace('FILE', source)}"
            ],
        )


def _unshared(node: Any) -> Any:
    """A copy with no shared sub-objects: YAML anchors (``&x``/``*x``) make one mapping appear
    in several places, and an override must change only the place it names."""
    if isinstance(node, dict):
        return {k: _unshared(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_unshared(v) for v in node]
    return node


def override_problem(data: Any, dotted: str) -> str | None:
    """Why the dotted key cannot be set in the raw mapping ``data``, or None if it can.

    Missing mapping keys are fine (they are created, and the schema then names the allowed
    ones); what cannot be followed is a list indexed by anything but an item number in range
    (negative numbers count from the end, as in Python) or a key under a plain value. One rule
    and one wording for every command that takes dotted keys (run, compare, sweep).
    """
    node: Any = data
    walked: list[str] = []
    for part in dotted.split("."):
        where = ".".join(walked) or "(top level)"
        if isinstance(node, list):
            if not node:
                return f"{where} is an empty list, no item {part!r}"
            if not part.lstrip("-").isdigit():
                return f"{where} is a list: use an item number (0..{len(node) - 1}), not {part!r}"
            index = int(part)
            if not -len(node) <= index < len(node):
                return f"{where} has {len(node)} items (0..{len(node) - 1}), no item {index}"
            node = node[index]
        elif isinstance(node, dict):
            if part == "":
                return f"empty key in {dotted!r}"
            node = node.get(part, {})
        else:
            return f"{where} is a single value ({node!r}), it has no key {part!r}"
        walked.append(part)
    return None


def apply_overrides(data: dict, overrides: dict[str, Any], source: str = "<scenario>") -> dict:
    """Set dotted keys (``demand.0.multiplier``) on a copy of the raw scenario mapping.

    A path that cannot be followed raises ScenarioError with one line per such override (see
    :func:`override_problem`). Overrides apply in order, so one may build what a later one
    goes into.
    """
    data = _unshared(data)
    problems = []
    for dotted, value in overrides.items():
        why = override_problem(data, dotted)
        if why is not None:
            problems.append(f"{dotted}: {why}")
            continue
        node: Any = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    if problems:
        raise ScenarioError(source, problems)
    return data


# -- error formatting -------------------------------------------------------------------------
def _members(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated/list/dict wrappers."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_members(arg))
        return out
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None


def _walk(loc: Iterable[Any], root: type[BaseModel]) -> tuple[str, type[BaseModel] | None]:
    """Render a pydantic error location as a field path; return the model the path ends in.

    Discriminated-union tags and type names that pydantic inserts into ``loc`` are dropped, so
    the path reads exactly as the keys in the file.
    """
    path = ""
    current: list[Any] = [root]
    last_model: type[BaseModel] | None = root
    for part in loc:
        models = [m for m in current if _is_model(m)]
        containers = [m for m in current if typing.get_origin(m) in (list, dict, tuple)]
        if isinstance(part, int) and containers:
            path += f"[{part}]"
            current = _members(typing.get_args(containers[0])[0])
            last_model = next((m for m in current if _is_model(m)), last_model)
            continue
        tagged = [m for m in models if _tag_of(m) == part]
        if tagged:
            current, last_model = tagged, tagged[0]
            continue
        owner = next((m for m in models if part in m.model_fields), None)
        if owner is not None:
            path += f".{part}" if path else str(part)
            current = _members(owner.model_fields[part].annotation)
            last_model = next((m for m in current if _is_model(m)), owner)
            continue
        dicts = [m for m in containers if typing.get_origin(m) is dict]
        if dicts:
            path += f".{part}" if path else str(part)
            current = _members(typing.get_args(dicts[0])[1])
            continue
        if isinstance(part, str) and not part[:1].islower():
            continue  # a type name pydantic adds for unions, e.g. 'list[float]'
        path += f".{part}" if path else str(part)
        current = []
    return path, last_model


def format_errors(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        path, model = _walk(err["loc"], root)
        kind = err["type"]
        if kind == "extra_forbidden" and model is not None:
            allowed = ", ".join(model.model_fields)
            msg = f"unknown key (allowed: {allowed})"
        elif kind == "missing":
            msg = "required key is missing"
        elif kind == "union_tag_invalid" or kind == "union_tag_not_found":
            ctx = err.get("ctx", {})
            msg = f"unknown or missing 'type' (allowed: {ctx.get('expected_tags', '')})"
        elif kind == "finite_number":
            msg = f"must be a finite number (got {err.get('input')!r})"
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            got = err.get("input")
            if kind not in ("value_error", "assertion_error") and not isinstance(got, dict | list):
                msg += f" (got {got!r})"
        lines.append(f"{path or '(top level)'}: {msg}")
    return lines
