"""Terminal tables that fit the width they are printed at (80 columns, or a pipe's 80).

Columns are described, not hand-placed, so a view that gains columns keeps fitting:

- ``keep`` columns (ids, state words) are never cut, wrapped or dropped;
- optional columns carry a ``drop`` rank: while the table is too wide, the highest rank goes
  first, and among equal ranks the widest: wide optional columns go before anything narrow
  is cut;
- ``note`` columns (reasons, notes) become numbered footnotes under the table, identical
  texts sharing one number, so a long reason never wraps a row one word per line;
- only what is left, free text, folds.

``wide=True`` shows every column with its full text (``--wide``); scripts use ``--json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# SIMPLE_HEAD without outer edges, one space of right padding: two spaces between columns
_SEPARATOR = 2
_BLANK = ("", "—", "-")
# free text is narrowed down to this, never below
MIN_TEXT = 6


@dataclass(frozen=True)
class Col:
    key: str
    header: str
    drop: int = 0  # 0: always shown; otherwise dropped, highest rank first, when too wide
    keep: bool = False  # ids and state words: never cut or wrapped
    note: bool = False  # free text shown as footnotes unless wide
    right: bool = False  # numbers
    hoist: bool = False  # one value in every row: said once above the table instead


def _width(text: str) -> int:
    return max((Text(line).cell_len for line in text.splitlines() or [""]), default=0)


def _footnotes(cols: list[Col], rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[str]]:
    notes: dict[str, int] = {}
    out = []
    for row in rows:
        row = dict(row)
        for c in cols:
            if c.note and (text := row.get(c.key, "")):
                row[c.key] = f"[{notes.setdefault(text, len(notes) + 1)}]"
        out.append(row)
    return out, list(notes)


def _hoisted(cols: list[Col], rows: list[dict[str, str]]) -> tuple[list[Col], list[str]]:
    said, left = [], []
    for c in cols:
        values = {r.get(c.key, "") for r in rows}
        if c.hoist and len(values) == 1 and rows:
            said.append(f"{c.header} {values.pop()}")
        else:
            left.append(c)
    return left, said


def _natural(c: Col, rows: list[dict[str, str]]) -> int:
    # a header wraps at its spaces ("30 FPS" / "budget"): its longest word is what it needs
    return max([*(_width(w) for w in c.header.split()), *(_width(r.get(c.key, "")) for r in rows)])


def _says_something(c: Col, rows: list[dict[str, str]]) -> bool:
    return any(r.get(c.key, "") not in _BLANK for r in rows)


def _fixed(c: Col) -> bool:
    return c.keep or c.note or c.right


def choose_columns(cols: Sequence[Col], rows: list[dict[str, str]], width: int) -> list[tuple[Col, int]]:
    """The columns that fit ``width`` and their widths: optional ones dropped by rank (the widest
    first among equals), then free text narrowed, the widest first; ids, states, numbers and
    footnote marks keep their full width."""
    natural = {c.key: _natural(c, rows) for c in cols}
    # a column empty (or all dashes) in every row says nothing; the first, the row's name, stays
    shown = [c for i, c in enumerate(cols) if i == 0 or _says_something(c, rows)]

    def total(cs: list[Col]) -> int:
        return sum(natural[c.key] for c in cs) + _SEPARATOR * (len(cs) - 1)

    while total(shown) > width:
        optional = [c for c in shown if c.drop]
        if not optional:
            break
        shown.remove(max(optional, key=lambda c: (c.drop, natural[c.key])))
    widths = {c.key: natural[c.key] for c in shown}
    excess = total(shown) - width
    floor = {c.key: max(MIN_TEXT, *(_width(w) for w in c.header.split())) for c in shown}
    while excess > 0:
        narrowable = [c for c in shown if not _fixed(c) and widths[c.key] > floor[c.key]]
        if not narrowable:
            break  # wider than the terminal: the terminal wraps, nothing is cut
        widths[max(narrowable, key=lambda c: widths[c.key]).key] -= 1
        excess -= 1
    return [(c, widths[c.key]) for c in shown]


def fit_table(cols: Sequence[Col], rows: list[dict[str, str]], width: int, *, title: str = "",
              wide: bool = False, caption: str = "") -> RenderableType:
    """A rich renderable: the table (columns chosen for ``width``) and its footnotes."""
    notes: list[str] = []
    if wide:
        chosen = [(c, max(_width(c.header), _natural(c, rows))) for i, c in enumerate(cols)
                  if i == 0 or _says_something(c, rows)]
    else:
        cols, said = _hoisted(list(cols), rows)
        if said:
            title = "; ".join([title, *said] if title else said)
        rows, notes = _footnotes(cols, rows)
        chosen = choose_columns(cols, rows, width)
    # title and caption as lines of their own: a table title wraps to the table's width
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), highlight=False)
    for c, w in chosen:
        # a header wraps at its spaces even over a column whose cells never wrap
        t.add_column(Text(c.header, no_wrap=False), justify="right" if c.right else "left", no_wrap=_fixed(c), width=w,
                     overflow="fold")
    for r in rows:
        t.add_row(*(escape(r.get(c.key, "")) for c, _ in chosen))
    parts: list[RenderableType] = [Text(title, style="bold", overflow="fold")] if title else []
    parts.append(t)
    parts += [Text(f"[{i}] {text}", overflow="fold") for i, text in enumerate(notes, 1)]
    if caption:
        parts.append(Text(caption, style="dim", overflow="fold"))
    return Group(*parts)


def print_table(console: Console, cols: Sequence[Col], rows: list[dict[str, str]], *, title: str = "",
                wide: bool = False, caption: str = "") -> None:
    """Print at the console's width; a table that cannot fit (``--wide``, or ids and states wider
    than a very narrow terminal) is printed at the width it needs: the terminal wraps its long
    lines, nothing is cut."""
    print_fitted(console, fit_table(cols, rows, console.width, title=title, wide=wide, caption=caption))


def print_fitted(console: Console, renderable: RenderableType) -> None:
    needed = console.measure(renderable, options=console.options.update_width(10_000)).minimum
    if needed <= console.width:
        console.print(renderable)
        return
    # Console.print never renders wider than its console: a wider one, same stream and colours
    Console(file=console.file, width=needed, color_system=console.color_system,  # type: ignore[arg-type]
            force_terminal=console.is_terminal, highlight=False).print(renderable)
