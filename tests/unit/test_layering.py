"""The engine stays a library: nothing under runtime/ imports the web side.

DESIGN.md: ``containers_app`` and ``webui`` import ``runtime``, never the other way, and
``runtime`` has no Django in it. The scan reads the source with ``ast``, so an import
inside a function or behind ``if TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
FORBIDDEN = {"django", "channels", "celery", "daphne", "containers_app", "webui"}
DYNAMIC_IMPORTERS = {"import_module", "__import__"}


def imported_modules(node: ast.AST) -> list[str]:
    """The absolute module names ``node`` imports, if it is an import of any kind."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        # Relative imports stay inside runtime/ whatever they are called.
        return [node.module] if node.level == 0 and node.module else []
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = node.args[0]
        if name in DYNAMIC_IMPORTERS and isinstance(first, ast.Constant):
            return [str(first.value)]
    return []


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """Each forbidden import in ``source`` as 'line N: module'."""
    return [
        f"line {getattr(node, 'lineno', '?')}: {module}"
        for node in ast.walk(ast.parse(source, filename))
        for module in imported_modules(node)
        if module.split(".")[0] in FORBIDDEN
    ]


def test_the_scan_spots_every_way_of_importing_the_web_side() -> None:
    source = (
        "import os\n"
        "import django.conf\n"
        "from celery import shared_task\n"
        "def later():\n"
        "    import importlib\n"
        "    importlib.import_module('webui.settings')\n"
        "from . import containers_app\n"  # relative: a runtime module, not the Django app
    )
    assert forbidden_imports(source) == [
        "line 2: django.conf",
        "line 3: celery",
        "line 6: webui.settings",
    ]


def test_no_runtime_module_imports_django_channels_celery_or_the_web_apps() -> None:
    files = sorted(RUNTIME.rglob("*.py"))
    assert files, f"no Python files under {RUNTIME}"
    offenders = {
        str(path.relative_to(RUNTIME.parent)): found
        for path in files
        if (found := forbidden_imports(path.read_text(), str(path)))
    }
    assert offenders == {}
