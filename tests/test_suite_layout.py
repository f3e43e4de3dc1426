"""Issue 19: no test module imports another.

A test module that imports another's helpers or fixtures couples the two, and a module fixture
imported that way is rebuilt in every importer. Shared helpers live in modules that are not test
modules (tests/fixtures.py, pipeline_helpers.py, data_helpers.py, train_push_helpers.py,
cli_helpers.py, ...), shared fixtures in tests/conftest.py. Checked on the source (ast), for every
Python file of tests/ (a helper that imports a test module would bring the coupling back).
"""
from __future__ import annotations

import ast
import os

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# Importer -> the test modules it may still import: none.
ALLOWED = {}


def _is_test_module(name: str) -> bool:
    return name.startswith("test_")


def imported_test_modules(path: str) -> set:
    """The tests/test_* modules the file at ``path`` imports, anywhere in it (functions too)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "tests" and len(parts) > 1 and _is_test_module(parts[1]):
                    found.add(parts[1])
                elif len(parts) == 1 and _is_test_module(parts[0]):
                    found.add(parts[0])
        elif isinstance(node, ast.ImportFrom):
            parts = node.module.split(".") if node.module else []
            if node.level == 0 and parts[:1] == ["tests"]:
                parts = parts[1:]  # tests' own modules (tests.test_x, or test_x imported from tests)
            elif node.level == 0 and not (parts and _is_test_module(parts[0])):
                continue  # another package
            elif node.level > 1:
                continue  # outside tests/
            if parts and _is_test_module(parts[0]):
                found.add(parts[0])  # tests.test_x or .test_x, then import names from it
            elif not parts:
                found.update(a.name for a in node.names if _is_test_module(a.name))  # from tests import test_x
    return found


def _imports_by_module() -> dict:
    return {name[:-3]: imported_test_modules(os.path.join(TESTS_DIR, name))
            for name in sorted(os.listdir(TESTS_DIR)) if name.endswith(".py")}


def test_the_check_sees_every_form_of_import(tmp_path):
    path = tmp_path / "test_example.py"
    source = ("import os\nimport PKG.test_a\nimport PKG.test_b as b\nfrom PKG.test_c import x\n"
              "from PKG import test_d, fixtures\nfrom .test_e import y\nfrom . import test_f\n"
              "import test_g\nfrom PKG import fixtures\nfrom PKG.fixtures import z\n"
              "from ..test_h import w\nfrom other.test_i import v\n"
              "def f():\n    from PKG.test_j import u\n")
    path.write_text(source.replace("PKG", "tests"), encoding="utf-8")  # (so that grep finds no import here)
    assert imported_test_modules(str(path)) == {"test_a", "test_b", "test_c", "test_d", "test_e", "test_f",
                                                "test_g", "test_j"}


def test_no_test_module_imports_another():
    imports = _imports_by_module()
    assert "test_suite_layout" in imports and "conftest" in imports  # it read this directory
    found = {module: sorted(imported - ALLOWED.get(module, set()))
             for module, imported in imports.items() if imported - ALLOWED.get(module, set())}
    assert found == {}, (
        f"{found}: move what these modules share into a helper module of tests/ that is not a test "
        "module (tests/fixtures.py, pipeline_helpers.py, ...) or, for a fixture, into tests/conftest.py")


def test_the_allow_list_holds_only_what_is_still_needed():
    imports = _imports_by_module()
    stale = {module: sorted(allowed - imports.get(module, set()))
             for module, allowed in ALLOWED.items() if allowed - imports.get(module, set())}
    assert stale == {}, f"{stale}: no longer imported; remove them from ALLOWED in tests/test_suite_layout.py"
