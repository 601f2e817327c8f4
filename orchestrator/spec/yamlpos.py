"""YAML documents validated by pydantic, with errors that name file, line and field.

Every YAML input of benchfarm (matrix specs, host inventories, fleets, schedules,
budgets) goes through :func:`load_validated`, so all of them report problems the same
way: ``spec.yaml:7: backends[2]: unknown backend 'MSP' (known: ...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

Loc = tuple[str | int, ...]
# Any validated YAML document of benchfarm is a few KB; one far bigger is a mistake or an
# attack, refused before it is parsed (matrix specs have a tighter limit of their own).
MAX_DOCUMENT_BYTES = 1024 * 1024


class SpecError(ValueError):
    """One or more problems in a YAML document; ``str()`` gives one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _index_lines(node: yaml.Node, loc: Loc, out: dict[Loc, int], dupes: list[tuple[Loc, int]]) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key, str):  # a complex key; the model rejects it by name
                continue
            if key in seen:  # YAML loaders keep the last value: the first would be silently lost
                dupes.append(((*loc, key), key_node.start_mark.line + 1))
                continue
            seen.add(key)
            out[(*loc, key)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*loc, key), out, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*loc, i), out, dupes)


def format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "<document>"


def line_for(loc: Loc, lines: dict[Loc, int]) -> int:
    # pydantic may append union-member names or other synthetic parts; walk up to the
    # deepest location that exists in the document.
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases: benchfarm's documents never need them, and
    nested aliases (a "billion laughs" document) would expand into gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed here",
                                              event.start_mark)
        return super().compose_node(parent, index)


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node graph and its data, from one parse. libyaml's parser (~50x faster than
    the pure-Python one, so a document at the size limit parses in milliseconds) when present;
    aliases are refused first, in its event stream."""
    if not getattr(yaml, "__with_libyaml__", False):
        loader: Any = _NoAliasLoader(text)
    else:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.AliasEvent):
                mark: Any = event.start_mark  # libyaml's Mark: same line/column fields
                raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed here", mark)
        loader = yaml.CSafeLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML text; return the data and a map from field location to line number.
    A duplicate key is an error naming its line (a loader would keep the last value)."""
    if len(text) > max_bytes:  # characters, a lower bound of bytes: cheap, and refused before parsing
        raise SpecError([f"{source}:1: document is {len(text):,} characters, over the limit of {max_bytes:,}"])
    try:
        node, data = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # an error at end of stream points past the last line; name the last line instead
        line = min(mark.line + 1, max(1, len(text.splitlines()))) if mark else 1
        raise SpecError([f"{source}:{line}: invalid YAML: {exc.problem or exc}"]) from None
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # libyaml may refuse unhashable keys with TypeError
        raise SpecError([f"{source}:1: invalid YAML: {exc}"]) from None
    lines: dict[Loc, int] = {}
    dupes: list[tuple[Loc, int]] = []
    if node is not None:
        _index_lines(node, (), lines, dupes)
    if dupes:
        raise SpecError([f"{source}:{line}: {format_loc(loc)}: duplicate key {loc[-1]!r} (first at line "
                         f"{lines.get(loc, line)})" for loc, line in dupes])
    return data, lines


def validate(model: type[M], data: Any, lines: dict[Loc, int], source: str, context: Any = None) -> M:
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            problems.append(f"{source}:{line_for(loc, lines)}: {format_loc(loc)}: {msg}")
        raise SpecError(problems) from None


def read_text(path: str | Path) -> str:
    """A document's text, or :class:`SpecError` naming the file."""
    path = Path(path)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}: cannot read: {exc}"]) from None


def load_validated(model: type[M], path: str | Path, context: Any = None) -> M:
    """Read ``path`` and validate it as ``model``; raise :class:`SpecError` naming file:line."""
    return loads_validated(model, read_text(path), str(path), context)


def loads_validated(model: type[M], text: str, source: str, context: Any = None) -> M:
    data, lines = parse_yaml(text, source)
    if data is None:
        raise SpecError([f"{source}:1: empty document"])
    return validate(model, data, lines, source, context)
