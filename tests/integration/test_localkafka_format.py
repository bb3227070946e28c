"""Storage formatting takes any cluster id, including those starting with "-"."""

from __future__ import annotations

import pytest

from stream.localkafka import LocalKafka, free_port

pytestmark = pytest.mark.integration


def test_a_cluster_id_starting_with_a_dash_formats(tmp_path, monkeypatch) -> None:
    # base64 ids start with "-" one time in 64; argparse once took such an id for a flag.
    monkeypatch.setattr("stream.localkafka.uuid.uuid4", lambda: type("U", (), {"bytes": b"\xfb" + b"\x00" * 15})())
    broker = LocalKafka(data_dir=tmp_path / "broker", port=free_port())
    try:
        broker.start()
        assert (tmp_path / "broker" / "data" / "meta.properties").read_text().count("cluster.id=-") == 1
    finally:
        broker.stop()
