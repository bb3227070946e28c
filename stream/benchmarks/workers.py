"""The worker subprocesses of a benchmark run: started, watched and stopped by their own PID.

Each is a ``stream.processes.ChildProcess`` (own session, output in a log file under the
run's directory, stopped by the PID it started) that can also be asked whether it is
healthy and how much memory it holds.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from stream.benchmarks.errors import BenchmarkError
from stream.processes import ChildProcess

__all__ = ["WorkerProcess", "naive_worker", "xsell_worker"]

DEFAULT_READY_TIMEOUT_S = 600.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class WorkerProcess(ChildProcess):
    """One worker subprocess (see ``stream.processes.ChildProcess``), maybe with an HTTP port."""

    web_port: int | None = None

    def check_alive(self) -> None:
        """Raise ``BenchmarkError`` with the log's tail if the worker has exited."""
        code = self.exit_code()
        if code is not None:
            raise BenchmarkError(f"worker {self.name} exited with code {code}; see {self.log_path}: {self.log_tail(1)}")

    def wait_healthy(self, timeout_s: float = DEFAULT_READY_TIMEOUT_S) -> float:
        """Wait for ``/healthz`` to answer 200; return the seconds it took."""
        if self.web_port is None:
            raise BenchmarkError(f"worker {self.name} has no HTTP port to ask")
        started = time.monotonic()
        url = f"http://127.0.0.1:{self.web_port}/healthz"
        while time.monotonic() - started < timeout_s:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own worker
                    if response.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise BenchmarkError(f"worker {self.name} not ready after {timeout_s:.0f}s; see {self.log_path}")

    def cpu_seconds(self) -> float:
        """CPU time the worker process has used so far, all its threads, user + system (``/proc``)."""
        if self.process is None:
            raise BenchmarkError(f"worker {self.name} was never started")
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError as exc:
            raise BenchmarkError(f"cannot read the CPU time of worker {self.name}: {exc}") from exc
        # After the command name: state is field 3 of stat(5), utime and stime are 14 and 15.
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        """Resident memory of the worker process now (``VmRSS`` from /proc)."""
        if self.process is None:
            raise BenchmarkError(f"worker {self.name} was never started")
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError as exc:
            raise BenchmarkError(f"cannot read the memory of worker {self.name}: {exc}") from exc
        raise BenchmarkError(f"/proc/{self.pid}/status has no VmRSS")


def xsell_worker(
    name: str, *, run_dir: Path, web_port: int, settings: dict[str, str]
) -> WorkerProcess:
    """An ``xsell worker`` with the given ``XSELL_*`` settings (nothing from our shell's XSELL_*)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("XSELL_")}
    if "XSELL_KAFKA_LIBS" in os.environ:
        env["XSELL_KAFKA_LIBS"] = os.environ["XSELL_KAFKA_LIBS"]
    env.update(
        {
            "XSELL_WEB_PORT": str(web_port),
            "XSELL_WEB_HOST": "127.0.0.1",
            "XSELL_DATA_DIR": str(run_dir / name),
            "XSELL_LOG_LEVEL": "warn",
            **settings,
        }
    )
    return WorkerProcess(
        name,
        [sys.executable, "-m", "stream", "worker"],
        env,
        run_dir / f"{name}.log",
        web_port=web_port,
    )


def naive_worker(name: str, *, run_dir: Path, settings: dict[str, str]) -> WorkerProcess:
    """The naive forwarding agent (``stream.benchmarks.naive_app``) with ``XSELL_BENCH_*`` settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("XSELL_")}
    env.update({"XSELL_BENCH_DATA_DIR": str(run_dir / name), **settings})
    return WorkerProcess(
        name,
        [sys.executable, "-m", "stream.benchmarks.naive_app", "worker", "--loglevel", "warn"],
        env,
        run_dir / f"{name}.log",
    )
