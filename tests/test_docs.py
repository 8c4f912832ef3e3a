"""The documentation is executable and complete.

- Every ```python block of every page in `docs/` and of every README runs, with
  [Sybil](https://sybil.readthedocs.io): the blocks of one page run in order in one
  namespace, like a reader's session, and a page whose example raises fails here.
  Blocks that are not Python to run are fenced ```console, ```text, ```toml, ...;
  a Python block that must not run is preceded by `<!-- skip: next "reason" -->`.
- Every hook spec in `lerax.plugin.hookspecs` is documented, with its arguments, on
  the writing-a-plugin page, and every hook documented there exists.
"""

import os
import re
import unittest
from pathlib import Path

import pytest

from lerax.plugin import reload_registry
from lerax.plugin.registry import LeraxPluginManager

try:
    from sybil import Sybil
    from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
    from sybil.parsers.markdown.lexers import FencedCodeBlockLexer
except ImportError:  # the test environment must install it: sybil>=10.1
    Sybil = None

needs_sybil = pytest.mark.skipif(
    Sybil is None, reason="sybil is not installed: pip install 'sybil>=10.1'"
)

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PLUGIN_GUIDE = DOCS / "writing-a-plugin.md"

#: Every Markdown file whose Python examples must run.
PAGES = sorted(
    {
        *DOCS.rglob("*.md"),
        REPO / "README.md",
        *REPO.glob("plugins/*/README.md"),
        *REPO.glob("examples/*/README.md"),
        *REPO.glob("benchmarks/README.md"),
    }
)

#: Fence languages that are Python but that the parser would not run.
UNRUN_PYTHON = {"py", "py3", "python3", "pycon", "ipython", "pyi"}

if Sybil is not None:
    SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()], path=str(REPO))
    FENCES = Sybil(parsers=[FencedCodeBlockLexer(language=r".*")], path=str(REPO))


def _name(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


def _fence_languages(page: Path) -> list[tuple[int, str]]:
    """`(line, language)` of every fenced code block of `page`."""
    document = FENCES.parse(page)
    return [
        (document.text.count("\n", 0, start) + 1, region.lexemes["language"].strip())
        for start, region in document.regions
    ]


def _has_python(page: Path) -> bool:
    if Sybil is None:  # every page, each skipped
        return True
    return any(language == "python" for _, language in _fence_languages(page))


@pytest.fixture
def reader_session(tmp_path, monkeypatch):
    """A scratch working directory, W&B offline, and every plugin enabled.

    The environment and the plugin registry are restored afterwards, so a page may
    set `LERAX_PLUGINS` or `LERAX_DISABLE_PLUGINS` as its reader would.
    """
    saved = dict(os.environ)
    monkeypatch.chdir(tmp_path)  # runs/, wandb/ and metrics files land here
    for variable in ("LERAX_PLUGINS", "LERAX_DISABLE_PLUGINS"):
        os.environ.pop(variable, None)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    reload_registry()
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reload_registry()


@needs_sybil
@pytest.mark.parametrize(
    "page", [page for page in PAGES if _has_python(page)], ids=_name
)
def test_python_examples_run(page, reader_session):
    skipped = []
    for example in SYBIL.parse(page):
        try:
            example.evaluate()
        except unittest.SkipTest as reason:
            skipped.append(f"line {example.line}: {reason}")
        except BaseException as error:
            error.add_note(f"in the example at {_name(page)}, line {example.line}")
            raise
    if skipped:
        pytest.skip(f"some examples of {_name(page)} are skipped: {skipped}")


@needs_sybil
@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_python_blocks_are_fenced_as_python(page):
    """A block fenced ```py, or not labelled at all, would never run."""
    unrun = [
        f"line {line}: ```{language}"
        for line, language in _fence_languages(page)
        if not language or language.lower() in UNRUN_PYTHON
    ]
    assert not unrun, (
        f"{_name(page)}: fence Python examples as ```python and other blocks with "
        f"their language (```console, ```text, ...): {unrun}"
    )


# --------------------------------------------------------------------------- #
# Hook specs <-> the writing-a-plugin page (as datasette does for its hooks)
# --------------------------------------------------------------------------- #

#: A documented hook is a heading such as "### `lerax_on_iteration(step, metrics)`".
HOOK_HEADING = re.compile(r"^#{2,6}\s+`?(lerax_\w+)\(([^)]*)\)`?\s*$", re.MULTILINE)


def _hook_specs() -> dict[str, list[str]]:
    manager = LeraxPluginManager()
    return {
        name: list(getattr(manager.hook, name).spec.argnames)
        for name in dir(manager.hook)
        if not name.startswith("_")
    }


def _documented_hooks() -> dict[str, list[str]]:
    headings = HOOK_HEADING.findall(PLUGIN_GUIDE.read_text(encoding="utf-8"))
    return {
        name: [arg.strip() for arg in args.split(",") if arg.strip()]
        for name, args in headings
    }


def test_there_are_hook_specs_to_document():
    assert len(_hook_specs()) >= 6


@pytest.mark.parametrize("hook", sorted(_hook_specs()))
def test_hook_spec_is_documented(hook):
    documented = _documented_hooks()
    assert hook in documented, (
        f"hook {hook} is not documented: add a heading "
        f"`{hook}({', '.join(_hook_specs()[hook])})` to {_name(PLUGIN_GUIDE)}"
    )
    assert documented[hook] == _hook_specs()[hook], (
        f"{_name(PLUGIN_GUIDE)} documents {hook}({', '.join(documented[hook])}) "
        f"but the spec is {hook}({', '.join(_hook_specs()[hook])})"
    )


@pytest.mark.parametrize("hook", sorted(_documented_hooks()))
def test_documented_hook_exists(hook):
    assert hook in _hook_specs(), (
        f"{_name(PLUGIN_GUIDE)} documents {hook}, which is not a hook spec in "
        f"lerax.plugin.hookspecs"
    )
