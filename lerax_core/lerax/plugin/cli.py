"""The `lerax` command line: `lerax plugins` lists plugins, `lerax plugins new` makes one."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    }


HEADERS = ("plugin", "distribution", "names", "hooks", "status")
NO_PLUGINS = (
    "No Lerax plugins installed. Install one, e.g. `pip install lerax-console`, "
    "or start your own with `lerax plugins new NAME`."
)


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    return (
        row["name"],
        f"{row['distribution']} {row['version']}",
        ", ".join(f"{n['name']} ({n['kind']})" for n in row["names"]) or "-",
        ", ".join(row["hooks"]) or "-",
        row["status"] + (f": {row['error']}" if row["error"] else ""),
    )


def _plain_table(rows: list[dict[str, Any]]) -> None:
    lines = [HEADERS, *map(_cells, rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS) - 1)]
    for line in lines:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)),
            line[-1],
        )


def _rich_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    style = {"ok": "green", "broken": "bold red", "disabled": "yellow"}
    table = Table(title="Lerax plugins")
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in rows:
        *cells, status = _cells(row)
        table.add_row(*cells, f"[{style[row['status']]}]{status}[/]")
    Console().print(table)


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
    commands = parser.add_subparsers(dest="command", required=True)
    plugins = commands.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("--json", action="store_true", help="print a JSON list")
    actions = plugins.add_subparsers(dest="action")
    new = actions.add_parser("new", help="write a new lerax-NAME plugin package")
    new.add_argument("name", help="the plugin's name, a lowercase identifier")
    new.add_argument(
        "--directory", type=Path, default=Path.cwd(), help="where to create it"
    )
    args = parser.parse_args(argv)

    if args.action == "new":
        from lerax.plugin.scaffold import new_plugin

        try:
            root = new_plugin(args.name, args.directory)
        except (ValueError, FileExistsError) as error:
            parser.error(str(error))
        print(f"Created {root}. Next: pip install -e {root} && pytest {root}")
        return 0
    rows = plugin_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    return 1 if any(row["status"] == "broken" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
