"""The processes the demo starts (broker, worker): started, recorded by PID, stopped by that PID.

``demo-pids.json`` under the data directory names every process of the current run, so a
later run (or a test) can tell whether anything is left. Nothing here finds or signals a
process by name: a worker is stopped through the ``Popen`` that started it, a PID read
back from a file is only ever *checked*, and only reported when it still looks like ours.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from stream.processes import ChildProcess

__all__ = ["PID_FILE", "PidRecord", "WorkerProcess", "process_running", "worker_environment"]

PID_FILE = "demo-pids.json"
WORKER_STOP_TIMEOUT_S = 30.0
KEPT_ENVIRONMENT = {"XSELL_KAFKA_LIBS", "XSELL_MODEL_DIR", "XSELL_ENCODER_BATCH_SIZE"}
_SIGNATURES = {"broker": b"kafka.Kafka", "worker": b"stream\x00worker"}


def process_running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (read from /proc; signals nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def _looks_like(role: str, pid: int) -> bool:
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return _SIGNATURES.get(role, b"\x00\x00") in command_line


@dataclass
class PidRecord:
    """``demo-pids.json``: the PIDs this run started, written as soon as each one exists."""

    path: Path
    pids: dict[str, int] = field(default_factory=dict)

    def record(self, role: str, pid: int) -> None:
        self.pids[role] = pid
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(self.pids, option=orjson.OPT_INDENT_2))
        os.replace(temporary, self.path)

    @staticmethod
    def left_running(path: Path) -> dict[str, int]:
        """Processes a previous run recorded that still run and still look like a broker or worker."""
        try:
            recorded = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return {
            role: int(pid)
            for role, pid in recorded.items()
            if role in _SIGNATURES and process_running(int(pid)) and _looks_like(role, int(pid))
        }


def worker_environment(settings: dict[str, str]) -> dict[str, str]:
    """The shell's environment without its XSELL_* settings (bar a few), plus the demo's."""
    base = {
        name: value for name, value in os.environ.items() if not name.startswith("XSELL_") or name in KEPT_ENVIRONMENT
    }
    return {**base, **settings}


class WorkerProcess(ChildProcess):
    """One ``python -m stream worker`` subprocess, in its own session (Ctrl-C is ours to forward)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__("worker", [sys.executable, "-m", "stream", "worker"], env, log_path)

    async def stop_async(self, timeout_s: float = WORKER_STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (a clean Faust shutdown), SIGKILL after ``timeout_s``; reaps the process.

        Waits by polling, so the demo's event loop (and its Ctrl-C handling) keeps running."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            waited = 0.0
            while process.poll() is None and waited < timeout_s:
                await asyncio.sleep(0.1)
                waited += 0.1
            if process.poll() is None:
                process.kill()
                await asyncio.to_thread(process.wait)
        self.close_log()
        return None if process is None else process.returncode
