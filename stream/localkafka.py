"""A single-node Apache Kafka broker (KRaft) for development, tests and the demo.

The broker runs from the jars that ``make setup`` fetched with Maven into
``.kafka/libs`` (see ``deploy/kafka/pom.xml``). Everything it writes lives under one
data directory::

    DIR/server.properties   generated configuration
    DIR/log4j2.properties   broker logging configuration
    DIR/data/               KRaft metadata and topic logs (formatted on first use)
    DIR/broker.log          the broker's own log
    DIR/kafka.pid           PID of the broker JVM we started
    DIR/kafka.port          its client port

``stop`` signals exactly the PID that ``start`` recorded, never a process found by name.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from stream.errors import LocalKafkaError

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_HEAP",
    "DEFAULT_PORT",
    "LocalKafka",
    "default_libs_dir",
    "java_major_version",
]

DEFAULT_PORT = 9092
DEFAULT_HEAP = "512m"
DEFAULT_START_TIMEOUT_S = 90.0
DEFAULT_STOP_TIMEOUT_S = 30.0
MIN_JAVA_MAJOR = 17
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / ".kafka" / "local"

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.org.name = org.apache.kafka
logger.org.level = WARN
"""


def default_libs_dir() -> Path:
    """Where ``make setup`` puts the broker jars (overridable with XSELL_KAFKA_LIBS)."""
    return Path(os.environ.get("XSELL_KAFKA_LIBS", REPO_ROOT / ".kafka" / "libs"))


def _java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    return shutil.which("java")


def java_major_version(java: str) -> int:
    """The major version of a ``java`` executable (8 for 1.8, 17 for 17.0.15, ...)."""
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise LocalKafkaError(f"cannot tell the version of {java}: {result.stderr.strip()[:200]}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers signal 0; reap it if it is ours.
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return _not_zombie(pid)
    return reaped == 0


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _broker_accepts_clients(host: str, port: int) -> bool:
    """True once the broker answers a Kafka ApiVersions request on its client port."""
    # ApiVersions v0: size, api_key=18, api_version=0, correlation_id=1, client_id=null
    request = b"\x00\x12\x00\x00\x00\x00\x00\x01\xff\xff"
    try:
        with socket.create_connection((host, port), timeout=2.0) as conn:
            conn.sendall(len(request).to_bytes(4, "big") + request)
            header = conn.recv(4)
            if len(header) < 4:
                return False
            body = conn.recv(int.from_bytes(header, "big"))
            # correlation id echoed back, then error_code 0
            return body[:4] == b"\x00\x00\x00\x01" and body[4:6] == b"\x00\x00"
    except OSError:
        return False


@dataclass(frozen=True, kw_only=True)
class LocalKafka:
    """One local KRaft broker (controller and broker in one JVM) under ``data_dir``."""

    data_dir: Path = DEFAULT_DATA_DIR
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    heap: str = DEFAULT_HEAP
    libs_dir: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return Path(self.data_dir) / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return Path(self.data_dir) / "broker.log"

    def running_pid(self) -> int | None:
        """The PID of the broker recorded under ``data_dir`` if it still runs."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def recorded_bootstrap(self) -> str | None:
        try:
            port = int((Path(self.data_dir) / "kafka.port").read_text().strip())
        except (OSError, ValueError):
            return None
        return f"{self.host}:{port}"

    def start(self, timeout_s: float = DEFAULT_START_TIMEOUT_S) -> str:
        """Start the broker, wait until it accepts clients, return its bootstrap address."""
        data_dir = Path(self.data_dir).resolve()
        if self.running_pid() is not None:
            raise LocalKafkaError(
                f"a broker already runs for {data_dir} (pid {self.running_pid()}); "
                f"stop it with `xsell kafka down --data-dir {data_dir}`"
            )
        initial_heap = min_heap(self.heap)
        java = self._checked_java()
        libs = self._checked_libs()
        controller_port = free_port()
        for port, what in ((self.port, "client"), (controller_port, "controller")):
            if not _port_is_free(port, self.host):
                raise LocalKafkaError(f"port {port} ({what}) on {self.host} is already in use")

        data_dir.mkdir(parents=True, exist_ok=True)
        properties = data_dir / "server.properties"
        properties.write_text(self._server_properties(data_dir, controller_port))
        log4j = data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2.format(log=data_dir / "broker.log"))
        classpath = f"{libs}/*"
        logging_flag = f"-Dlog4j2.configurationFile={log4j}"

        if not (data_dir / "data" / "meta.properties").exists():
            self._format(java, classpath, logging_flag, properties)

        stdout = open(data_dir / "broker.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            process = subprocess.Popen(
                [
                    java,
                    f"-Xmx{self.heap}",
                    f"-Xms{initial_heap}",
                    "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                    logging_flag,
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(properties),
                ],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in our terminal is ours to forward
            )
        finally:
            stdout.close()
        self.pid_file.write_text(str(process.pid))
        (data_dir / "kafka.port").write_text(str(self.port))

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise LocalKafkaError(
                    f"the broker exited with code {process.returncode} during start-up; "
                    f"see {data_dir / 'broker.out'}"
                )
            if _broker_accepts_clients(self.host, self.port):
                return self.bootstrap
            time.sleep(0.2)
        self.stop()
        raise LocalKafkaError(f"the broker did not accept clients within {timeout_s:.0f}s")

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> bool:
        """Stop the recorded broker and wait for it to exit. False if none was running."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _checked_java(self) -> str:
        java = _java_executable()
        if java is None:
            raise LocalKafkaError(f"java not found: install Java {MIN_JAVA_MAJOR}+ or set JAVA_HOME")
        major = java_major_version(java)
        if major < MIN_JAVA_MAJOR:
            raise LocalKafkaError(f"{java} is Java {major}; the Kafka broker needs Java {MIN_JAVA_MAJOR}+")
        return java

    def _checked_libs(self) -> Path:
        libs = Path(self.libs_dir) if self.libs_dir is not None else default_libs_dir()
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise LocalKafkaError(f"Kafka jars not found in {libs}: run `make setup`")
        return libs.resolve()

    def _server_properties(self, data_dir: Path, controller_port: int) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data_dir / "data"),
            # One node: the internal topics must not ask for replicas that cannot exist.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "168",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _format(self, java: str, classpath: str, logging_flag: str, properties: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [
                java,
                logging_flag,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                # One argument: a base64 id may start with "-", which argparse takes for a flag.
                f"--cluster-id={cluster_id}",
                "-c",
                str(properties),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LocalKafkaError(f"formatting the broker storage failed: {detail[0]}")


def min_heap(heap: str) -> str:
    """Initial heap: the smaller of 128m and the maximum."""
    match = re.fullmatch(r"(\d+)([kmg])", heap.lower())
    if not match:
        raise LocalKafkaError(f"heap must look like 512m or 1g, got {heap!r}")
    size = int(match.group(1)) * {"k": 1, "m": 1024, "g": 1024 * 1024}[match.group(2)]
    return heap if size <= 128 * 1024 else "128m"
