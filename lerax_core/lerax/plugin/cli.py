"""The `lerax` command line: `lerax plugins` lists what is installed."""

import argparse
import json
import sys
from collections.abc import Sequence
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


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return (
            "No Lerax plugins installed. Install one, e.g. "
            "`pip install lerax-console`, or write your own: see the plugin guide."
        )
    headers = ("plugin", "distribution", "names", "hooks", "status")
    cells = [
        (
            row["name"],
            f"{row['distribution']} {row['version']}",
            ", ".join(f"{n['name']} ({n['kind']})" for n in row["names"]) or "-",
            ", ".join(row["hooks"]) or "-",
            row["status"] + (f": {row['error']}" if row["error"] else ""),
        )
        for row in rows
    ]
    widths = [max(len(str(c[i])) for c in [headers, *cells]) for i in range(4)]
    lines = [
        "  ".join(str(c[i]).ljust(widths[i]) for i in range(4)) + "  " + c[4]
        for c in [headers, *cells]
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lerax` console script and of `python -m lerax`."""
    parser = argparse.ArgumentParser(prog="lerax", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plugins = commands.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("--json", action="store_true", help="print a JSON list")
    args = parser.parse_args(argv)

    if args.command == "plugins":
        rows = plugin_rows()
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(_table(rows))
        return 1 if any(row["status"] == "broken" for row in rows) else 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
