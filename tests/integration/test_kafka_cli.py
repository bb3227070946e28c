"""``xsell kafka up|status|down`` from a subprocess, and its one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from stream.localkafka import LocalKafka, free_port

pytestmark = pytest.mark.integration


def process_runs(pid: int) -> bool:
    """Whether a process runs, read from /proc (an exited orphan may linger as a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_up_status_down_leaves_no_broker(xsell, tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "broker"
    up = xsell("kafka", "up", "--port", str(port), "--data-dir", str(data_dir))
    broker = LocalKafka(data_dir=data_dir, port=port)
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip() == f"127.0.0.1:{port}"
        pid = broker.running_pid()
        assert pid is not None
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass

        status = xsell("kafka", "status", "--data-dir", str(data_dir))
        assert status.returncode == 0 and f"pid={pid}" in status.stdout

        again = xsell("kafka", "up", "--port", str(port), "--data-dir", str(data_dir))
        assert_one_line_error(again, "already runs")

        down = xsell("kafka", "down", "--data-dir", str(data_dir))
        assert down.returncode == 0 and "stopped" in down.stdout
        assert not process_runs(pid), "the broker survived `kafka down`"

        status = xsell("kafka", "status", "--data-dir", str(data_dir))
        assert status.returncode == 1 and "not running" in status.stdout
    finally:
        broker.stop()


def test_missing_jars_say_run_make_setup(xsell, tmp_path: Path) -> None:
    empty = tmp_path / "no-jars"
    empty.mkdir()
    result = xsell(
        "kafka",
        "up",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "d"),
        env={"XSELL_KAFKA_LIBS": str(empty)},
    )
    assert_one_line_error(result, "make setup", str(empty))


def test_taken_port_is_refused(xsell, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = xsell("kafka", "up", "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert_one_line_error(result, f"port {port}", "in use")
    assert LocalKafka(data_dir=tmp_path / "d").running_pid() is None


def test_missing_java_is_one_line(xsell, tmp_path: Path) -> None:
    path_without_java = os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "java").exists()
    )
    result = xsell(
        "kafka",
        "up",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "d"),
        env={"PATH": path_without_java, "JAVA_HOME": str(tmp_path / "nowhere")},
    )
    assert_one_line_error(result, "java not found")


def test_old_java_is_refused(xsell, tmp_path: Path) -> None:
    fake_home = tmp_path / "jdk8"
    (fake_home / "bin").mkdir(parents=True)
    fake_java = fake_home / "bin" / "java"
    fake_java.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_402\"' >&2\n")
    fake_java.chmod(0o755)
    result = xsell(
        "kafka",
        "up",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "d"),
        env={"JAVA_HOME": str(fake_home)},
    )
    assert_one_line_error(result, "Java 8", "17+")


def test_bad_flag_is_one_line(xsell) -> None:
    result = xsell("kafka", "up", "--port", "not-a-number")
    assert_one_line_error(result, "--port")
