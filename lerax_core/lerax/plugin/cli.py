"""The `lerax` command line: `lerax plugins` lists plugins, `lerax plugins new` makes one."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lerax import __version__
from lerax.plugin.registry import PluginInfo, get_registry


def plugin_rows() -> list[dict[str, Any]]:
    """One JSON-ready row per discovered plugin."""
    return [_row(info) for info in get_registry().plugins.values()]


def _row(info: PluginInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "names": [
            {"name": r.name, "kind": r.kind, "description": r.description}
            for r in info.registrations
        ],
        "hooks": info.hooks,
        "status": info.status,
        "error": info.reason or None,
        "conflicts": info.conflicts,
        "load_seconds": (
            None if info.load_seconds is None else round(info.load_seconds, 3)
        ),
        "slow": info.slow,
    }


HEADERS = ("plugin", "distribution", "names", "hooks", "status")
WIDE = 110
"""Terminal width from which the table shows the hooks column."""
NO_PLUGINS = (
    "No Lerax plugins installed. Install one, e.g. `pip install lerax-console`, "
    "or start your own with `lerax plugins new NAME`."
)


def printable(text: object) -> str:
    """`text` safe to print: line breaks become spaces, and other control
    characters (terminal escape sequences) are shown escaped, as `\\x1b`."""
    return "".join(map(_printable_char, str(text)))


def _printable_char(char: str) -> str:
    if char.isprintable():
        return char
    if char in "\n\r\t":
        return " "
    return char.encode("unicode_escape").decode("ascii")


def _status(row: dict[str, Any]) -> str:
    status, error = row["status"], row["error"]
    notes = [error if error and error.startswith(status) else status]
    if error and not error.startswith(status):
        notes[0] += f": {error}"
    if row["slow"]:
        notes.append(f"slow: {row['load_seconds']:.1f} s to load")
    notes.extend(f"conflict: {conflict}" for conflict in row["conflicts"])
    return "; ".join(notes)


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    """The table's cells of `row`, with everything a plugin supplied made printable."""
    cells = (
        row["name"],
        f"{row['distribution']} {row['version']}",
        ", ".join(f"{n['name']} ({n['kind']})" for n in row["names"]) or "-",
        ", ".join(row["hooks"]) or "-",
        _status(row),
    )
    return tuple(map(printable, cells))


def _plain_table(rows: list[dict[str, Any]]) -> None:
    lines = [HEADERS, *map(_cells, rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS) - 1)]
    for line in lines:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)),
            line[-1],
        )


def _rich_table(rows: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    style = {"ok": "green", "broken": "bold red", "disabled": "yellow"}
    console = Console()
    # Below WIDE columns the hooks (in --json too) give way to the status.
    shown = [i for i, h in enumerate(HEADERS) if h != "hooks" or console.width >= WIDE]
    cells_of = [[_cells(row)[i] for i in shown] for row in rows]
    table = Table(
        title="Lerax plugins", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )
    for column, index in enumerate(shown):
        # as wide as its longest word, so that names wrap between words
        words = [word for cells in cells_of for word in cells[column].split()]
        widest = max(map(len, [HEADERS[index], *words]))
        table.add_column(
            HEADERS[index],
            overflow="fold",
            min_width=min(widest, 24),
            ratio=1 if HEADERS[index] == "status" else None,
        )
    for row, (*cells, status) in zip(rows, cells_of, strict=True):
        # Text, never markup: a plugin's name or error may contain "[/x]".
        status_style = "bold red" if row["conflicts"] else style[row["status"]]
        table.add_row(*map(Text, cells), Text(status, style=status_style))
    console.print(table)


def _print_table(rows: list[dict[str, Any]]) -> None:
    """A rich table when rich is installed, aligned plain text otherwise."""
    if not rows:
        print(NO_PLUGINS)
        return
    try:
        _rich_table(rows)
    except ImportError:  # rich is optional: the core does not depend on it
        _plain_table(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lerax` console script and of `python -m lerax`."""
    parser = argparse.ArgumentParser(prog="lerax", description=__doc__)
    parser.add_argument("--version", action="version", version=f"lerax {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    plugins = commands.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("--json", action="store_true", help="print a JSON list")
    actions = plugins.add_subparsers(dest="action")
    new = actions.add_parser("new", help="write a new lerax-NAME plugin package")
    new.add_argument("name", help="the plugin's name, a lowercase identifier")
    new.add_argument(
        "--directory", type=Path, default=Path.cwd(), help="where to create it"
    )
    args = parser.parse_args(argv)

    if args.command is None:
        parser.print_help()
        return 0
    if args.action == "new":
        return _new(parser, args.name, args.directory)
    rows = plugin_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    failed = any(row["status"] == "broken" or row["conflicts"] for row in rows)
    return 1 if failed else 0


def _new(parser: argparse.ArgumentParser, name: str, directory: Path) -> int:
    from lerax.plugin.scaffold import new_plugin

    try:
        root = new_plugin(name, directory)
    except (ValueError, OSError) as error:
        parser.error(printable(error))
    print(f"Created {root}. Next: pip install -e {root} && pytest {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
