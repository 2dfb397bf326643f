"""Modules stay readable: none over 400 lines and no function over 80, outside the migrations (generated)."""

import ast
import subprocess

from tests.helpers import ROOT

MODULE_LINES, FUNCTION_LINES = 400, 80


def _sources() -> list[str]:
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [f for f in tracked.stdout.split() if "/migrations/" not in f]


def test_no_module_is_over_400_lines_and_no_function_over_80():
    long_modules, long_functions = [], []
    for name in _sources():
        text = (ROOT / name).read_text()
        if text.count("\n") > MODULE_LINES:
            long_modules.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text, name)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    long_functions.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    assert long_modules == [] and long_functions == []
