"""A child process that xsell started and stops by its own PID.

The demo's worker, the benchmark's workers and the integration tests' workers all need the
same things: start a command in its own session (so a Ctrl-C in the terminal reaches us,
and we decide how the child stops), append its output to a log file, and stop exactly that
PID (SIGTERM, then SIGKILL after a timeout), never a process found by name.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

__all__ = ["ChildProcess"]

DEFAULT_STOP_TIMEOUT_S = 30.0


@dataclass
class ChildProcess:
    """``command`` run with ``env``, its output appended to ``log_path``."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S  # SIGTERM, then SIGKILL after this long
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.pid

    def start(self) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def exit_code(self) -> int | None:
        """None while it runs (or was never started), else its exit code."""
        return None if self.process is None else self.process.poll()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float | None = None) -> int | None:
        """Send ``sig`` to our PID and wait for the exit (SIGKILL after ``timeout_s``, by default
        ``stop_timeout_s``); returns the exit code."""
        timeout_s = self.stop_timeout_s if timeout_s is None else timeout_s
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout_s)
        self.close_log()
        return None if process is None else process.returncode

    def kill(self) -> int | None:
        """kill -9, as a crash would."""
        return self.stop(signal.SIGKILL)

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
