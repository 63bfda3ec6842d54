"""Run ``trialkit`` commands as separate processes without paying the interpreter start-up each time.

The corpus runs dozens of failing commands; starting ``python -m analysis`` for each costs over a
second of imports. :class:`TrialkitForkServer` starts one Python process that imports the command
line once and then, for every request, **forks a child** that gets its own stdout and stderr files,
working directory and ``sys.argv``, runs :func:`analysis.cli.main` exactly as the console script
does, and exits with its exit code. The server forks before doing any work of its own, so the
children are single-threaded copies of a freshly started interpreter.

As for ``python -m analysis``, an exception escaping ``main`` is printed as a traceback on the
child's stderr and the exit code is 1; ``SystemExit`` gives its code.

Run as ``python -m tests.bad_inputs.cli_child``: reads one JSON request per line on stdin
(``argv``, ``cwd``, ``stdout``, ``stderr``) and answers one line with the child's exit code.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def _child(request: dict) -> int:
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    os.chdir(request["cwd"])
    sys.argv = ["trialkit", *request["argv"]]
    from analysis.cli import main

    try:
        main()
        code = 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code = done.code or 0
        else:
            print(done.code, file=sys.stderr)
            code = 1
    except BaseException:  # what the interpreter does with an uncaught exception
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def serve() -> None:
    # the imports every child would otherwise repeat: the command modules, and the scientific stack
    # they import only when a command runs (so that trialkit --help stays fast)
    import analysis.cli.commands  # noqa: F401
    import analysis.core.output  # noqa: F401
    import analysis.pipeline  # noqa: F401
    import analysis.sources.tables  # noqa: F401
    import analysis.stats.effects  # noqa: F401
    from analysis.cli import console

    console.width = 200  # as when stderr is not a terminal, whatever the server inherited
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os._exit(_child(request))
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        sys.stdout.flush()


class TrialkitForkServer:
    """A running fork server; :meth:`run` is ``subprocess.run`` for ``trialkit ARGV``."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "TRIALKIT_DEBUG"} | {"PYTHONPATH": str(REPO)}
        self._server = subprocess.Popen(
            [sys.executable, "-m", "tests.bad_inputs.cli_child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env,
            start_new_session=True,  # its own process group: a hung child is killed with it
        )

    def run(self, argv: list[str], cwd: Path, timeout: float = 120) -> Completed:
        captured = cwd.parent / f".{cwd.name}.captured"
        captured.mkdir(exist_ok=True)
        out, err = captured / "stdout", captured / "stderr"
        request = {"argv": argv, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
        assert self._server.stdin is not None and self._server.stdout is not None
        self._server.stdin.write(json.dumps(request) + "\n")
        self._server.stdin.flush()
        ready, _, _ = select.select([self._server.stdout], [], [], timeout)
        if not ready:
            os.killpg(self._server.pid, signal.SIGKILL)
            self._server.wait()
            raise TimeoutError(f"trialkit {' '.join(argv)} did not finish in {timeout} s")
        reply = self._server.stdout.readline()
        if not reply:
            raise RuntimeError(f"the fork server died (exit code {self._server.wait()})")
        result = Completed(json.loads(reply)["returncode"], out.read_text(encoding="utf-8"),
                           err.read_text(encoding="utf-8"))
        for path in (out, err):
            path.unlink()
        captured.rmdir()
        return result

    def close(self) -> None:
        if self._server.poll() is None:
            self._server.stdin.close()  # type: ignore[union-attr]
            try:
                self._server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()


if __name__ == "__main__":
    serve()
