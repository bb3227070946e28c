"""docker-compose.yml, checked by inspection (no Docker engine runs here)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def pinned_kafka_version() -> str:
    pom = ET.parse(REPO / "deploy" / "kafka" / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = pom.find("m:properties/m:kafka.version", ns)
    assert version is not None and version.text
    return version.text


def test_every_image_is_pinned(compose: dict) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image or service.get("build"), f"{name} has neither image nor build"
        if image:
            tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
            assert tag and tag != "latest", f"{name}: image {image} is not pinned"


def test_kafka_image_matches_the_maven_pinned_version(compose: dict) -> None:
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{pinned_kafka_version()}"


def test_every_mounted_file_exists(compose: dict) -> None:
    named_volumes = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source in named_volumes:
                continue
            assert source.startswith("./"), f"{name}: unexpected volume {volume}"
            assert (REPO / source).exists(), f"{name}: {source} does not exist"
        build = service.get("build")
        if build:
            assert (REPO / build["context"] / build["dockerfile"]).is_file()


def test_workers_use_the_internal_listener(compose: dict) -> None:
    kafka = compose["services"]["kafka"]["environment"]
    internal = re.search(r"INTERNAL://([^,]+)", kafka["KAFKA_ADVERTISED_LISTENERS"]).group(1)
    workers = [s for n, s in compose["services"].items() if n.startswith("worker")]
    assert len(workers) == 3
    for worker in workers:
        assert worker["environment"]["XSELL_BROKER"] == f"kafka://{internal}"
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_the_workers_answer_and_count_between_them(compose: dict) -> None:
    """A deployment needs both parts (docs/OPERATIONS.md, Roles): some worker answers events
    and publishes its HTTP port, some worker counts pairs; each worker's environment is one
    the worker's own settings accept."""
    from stream.settings import Settings

    settings = {
        name: Settings.from_env({key: str(value) for key, value in service["environment"].items()})
        for name, service in compose["services"].items()
        if name.startswith("worker")
    }
    answering = {name for name, setting in settings.items() if setting.runs_interactions}
    counting = {name for name, setting in settings.items() if setting.runs_cooccurrence}
    assert answering and counting
    assert answering == {"worker-1", "worker-2"} and counting == {"worker-cooccurrence"}
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert answering <= published  # the users' HTTP API is reachable from the host


def test_topics_are_created_once_before_the_workers_start(compose: dict) -> None:
    init = compose["services"]["topic-init"]
    assert init["command"] == ["topics", "create"] and init["restart"] == "no"
    assert init["environment"]["XSELL_BROKER"] == compose["x-worker"]["environment"]["XSELL_BROKER"]
    for name, service in compose["services"].items():
        if name.startswith("worker"):
            assert service["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"


def test_the_demo_producer_sits_behind_a_profile_and_runs_a_real_command(compose: dict) -> None:
    import importlib

    import typer

    from stream.cli import COMMAND_MODULES, app

    for module in COMMAND_MODULES:
        importlib.import_module(module)
    producer = compose["services"]["demo-producer"]
    assert producer["profiles"] == ["demo"]
    commands = typer.main.get_command(app).commands
    assert producer["command"][0] in commands
    assert compose["services"]["topic-init"]["command"][0] in commands


def test_prometheus_scrapes_every_worker(compose: dict) -> None:
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    workers = {n for n in compose["services"] if n.startswith("worker")}
    port = compose["x-worker"]["environment"]["XSELL_WEB_PORT"]
    assert targets == {f"{w}:{port}" for w in workers}
