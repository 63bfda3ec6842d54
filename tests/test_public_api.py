"""The public API in ``analysis/__init__.py``: lazy, documented, and every example runs."""

from __future__ import annotations

import doctest
import subprocess
import sys
from importlib import metadata

import pytest

import analysis

PUBLIC = [name for name in analysis.__all__ if name != "__version__"]


def test_version_is_the_installed_distributions() -> None:
    assert analysis.__version__ == metadata.version("trialkit")


def test_import_is_cheap_and_loads_no_scientific_stack() -> None:
    code = "import sys, analysis; print(sorted(m for m in ('pandas', 'numpy', 'scipy') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'not_a_function'"):
        analysis.not_a_function  # noqa: B018


@pytest.mark.parametrize("name", PUBLIC)
def test_public_function_has_a_numpydoc_docstring_whose_examples_run(name: str) -> None:
    obj = getattr(analysis, name)
    assert callable(obj), name
    doc = obj.__doc__ or ""
    for section in ("Examples\n    --------",):
        assert section in doc, f"{name}: docstring has no numpydoc 'Examples' section"
    # as pytest --doctest-modules does: the example sees the globals of the module defining it
    globs = dict(vars(sys.modules[obj.__module__]))
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, globs=globs)
    runnable = [
        example
        for test in tests
        for example in test.examples
        if not example.options.get(doctest.SKIP)
    ]
    assert runnable, f"{name}: no example that runs (all skipped or none)"
    assert any(example.want.strip() for example in runnable), f"{name}: no example checks an output"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} example(s) failed"
