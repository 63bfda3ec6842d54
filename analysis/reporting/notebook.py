"""Rendering parameterised notebooks to HTML: papermill executes, nbconvert exports.

Notebooks in ``notebooks/`` are templates stored without outputs; they only call package functions
and display what they return. :func:`render_notebook` executes one with papermill in a temporary
directory (so nothing is left behind if it fails) and writes the HTML, code cells hidden,
atomically.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from analysis.core.errors import UsageError
from analysis.core.output import write_bytes

KERNEL_NAME = "python3"


def _ipc_kernel_manager():
    """A kernel manager that talks to the kernel over local IPC sockets instead of TCP: nothing is
    exposed on the network, and ipykernel does not print its unencrypted-TCP warning into the user's
    terminal on every report."""
    from jupyter_client.manager import KernelManager
    from traitlets import CaselessStrEnum

    class IpcKernelManager(KernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    return IpcKernelManager


class NotebookError(RuntimeError):
    """A notebook failed while executing (a bug in trialkit or its template, not a user mistake)."""


@contextmanager
def _venv_first_on_path() -> Iterator[None]:
    """Put this interpreter's bin directory first on PATH, so the ``python3`` kernel is this venv's."""
    previous = os.environ.get("PATH", "")
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + previous
    try:
        yield
    finally:
        os.environ["PATH"] = previous


def render_notebook(template: Path, parameters: Mapping[str, object], out_html: Path) -> Path:
    """Execute ``template`` with ``parameters`` (papermill) and write it as HTML without code.

    Parameters
    ----------
    template
        A notebook with a cell tagged ``parameters`` (papermill convention).
    parameters
        Values injected after that cell; they must be JSON-like (str, int, float, bool, None).
    out_html
        Destination; written atomically (:func:`analysis.core.output.write_bytes`).

    Returns
    -------
    Path
        ``out_html``.

    Raises
    ------
    NotebookError
        When a cell raises; the message names the exception the notebook raised.

    Examples
    --------
    >>> from analysis.core.resources import notebook_path
    >>> render_notebook(notebook_path("meta_analysis.ipynb"), {"effects_path": "effects.csv"},
    ...                 Path("out/meta_report.html"))  # doctest: +SKIP
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    template = Path(template)
    if not template.is_file():
        raise UsageError(f"notebook template '{template}' does not exist")
    for name, value in parameters.items():
        if not isinstance(value, str | int | float | bool | type(None)):
            raise UsageError(f"notebook parameter '{name}' must be text, a number, true/false or empty (found {type(value).__name__})")
    with tempfile.TemporaryDirectory(prefix="trialkit-notebook-") as work:
        executed = Path(work) / template.name
        try:
            with _venv_first_on_path():
                papermill.execute_notebook(
                    str(template),
                    str(executed),
                    parameters=dict(parameters),
                    kernel_name=KERNEL_NAME,
                    cwd=work,
                    progress_bar=False,
                    log_output=False,
                    kernel_manager_class=_ipc_kernel_manager(),
                )
        except papermill.PapermillExecutionError as exc:
            raise NotebookError(f"{template.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}") from None
        notebook = nbformat.read(str(executed), as_version=4)
    _keep_stderr_out_of_the_report(notebook, template.name)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            extra_loaders=[_offline_template()], template_file="trialkit-offline.html.j2")
    body, _ = exporter.from_notebook_node(notebook)
    return write_bytes(Path(out_html), body.encode("utf-8"))


def _offline_template():
    """nbconvert's lab template without its scripts from a CDN (require.js, MathJax, Mermaid): the
    reports use none of them, and a report must open offline without errors in the console."""
    from jinja2 import DictLoader

    empty = ("html_head_js_requirejs", "html_head_js_mathjax", "html_head_js_mermaidjs")
    blocks = "".join(f"{{%- block {name} -%}}{{%- endblock {name} -%}}\n" for name in empty)
    return DictLoader({"trialkit-offline.html.j2": "{%- extends 'lab/index.html.j2' -%}\n" + blocks})


def _keep_stderr_out_of_the_report(notebook, name: str) -> None:
    """Library warnings the kernel printed (stderr) are not part of the report: each becomes a
    notice of the run, in trialkit's words (:func:`analysis.core.notices.replay_warnings`)."""
    from analysis.core.notices import replay_warnings

    for cell in notebook.cells:
        outputs = cell.get("outputs", [])
        stderr = [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        for output in stderr:
            replay_warnings(str(output.get("text", "")), f"the {name} notebook")
        if stderr:
            cell["outputs"] = [o for o in outputs if o not in stderr]
