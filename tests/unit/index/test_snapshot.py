"""Snapshots: identical results after load, ef re-applied, mismatches refused, atomic writes."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import hnswlib
import numpy as np
import pytest

from index import (
    ItemIndex,
    QueryPath,
    SnapshotCorruptError,
    SnapshotMismatchError,
    SnapshotNotFoundError,
    clustered_vectors,
    hnsw,
    read_manifest,
)

DIM = 32
MODEL = "all-MiniLM-L6-v2@test"


def reseal(generation: Path, *, checked: bool = True) -> None:
    """Take the manifest's checksums again after a test changed a payload file on purpose (a
    file written wrong, not damaged afterwards), or drop them (``checked=False``: a snapshot
    written before checksums)."""
    path = generation / "manifest.json"
    manifest = json.loads(path.read_text())
    if checked:
        files = manifest["files"]
        manifest["files"] = {name: hashlib.sha256((generation / name).read_bytes()).hexdigest() for name in files}
    else:
        del manifest["files"]
    path.write_text(json.dumps(manifest))


@pytest.fixture
def built() -> tuple[ItemIndex, np.ndarray]:
    vectors = clustered_vectors(3_100, DIM, seed=8)
    index = ItemIndex(DIM, exact_below=0, ef=40, model_version=MODEL)
    index.upsert([f"i{row}" for row in range(3_000)], vectors[:3_000], [{"n": row} for row in range(3_000)])
    index.delete([f"i{row}" for row in range(0, 3_000, 7)])  # leaves free slots in the snapshot
    return index, vectors[3_000:]


def test_save_then_load_returns_identical_results(built, tmp_path: Path) -> None:
    index, queries = built
    before = index.query(queries, 10)
    index.save(tmp_path / "snap", source_offsets={"item-embeddings[0]": 41, "item-embeddings[1]": 7})

    loaded = ItemIndex.load(tmp_path / "snap", expected_dim=DIM, expected_model_version=MODEL)
    after = loaded.query(queries, 10)

    assert after.report.path is QueryPath.HNSW
    assert after == before
    assert loaded.ef == 40, "hnswlib resets ef to 10 on load; the manifest's ef must be re-applied"
    assert len(loaded) == len(index) and loaded.ids() == index.ids()
    assert loaded.metadata("i1") == {"n": 1}
    assert loaded.source_offsets == {"item-embeddings[0]": 41, "item-embeddings[1]": 7}
    assert loaded.model_version == MODEL
    np.testing.assert_array_equal(loaded.vector("i5"), index.vector("i5"))


def test_loaded_index_keeps_working(built, tmp_path: Path) -> None:
    index, queries = built
    index.save(tmp_path)
    loaded = ItemIndex.load(tmp_path)
    capacity = loaded.capacity
    loaded.upsert(["fresh"], queries[:1])
    loaded.delete(["i1"])
    assert loaded.capacity == capacity, "a free slot from the snapshot was reused"
    row = loaded.query_one(queries[0], 10)
    assert row[0][0] == "fresh" and "i1" not in {item for item, _ in row}


def test_manifest_contents(built, tmp_path: Path) -> None:
    index, _ = built
    index.save(tmp_path, source_offsets={"p0": 3})
    manifest = read_manifest(tmp_path)
    assert (manifest.dim, manifest.space, manifest.count, manifest.model_version) == (
        DIM,
        "cosine",
        len(index),
        MODEL,
    )
    assert (manifest.m, manifest.ef_construction, manifest.ef) == (16, 100, 40)
    assert manifest.source_offsets == {"p0": 3}


def test_snapshot_of_another_dimension_or_model_is_refused(built, tmp_path: Path) -> None:
    index, _ = built
    index.save(tmp_path)
    with pytest.raises(SnapshotMismatchError, match=f"dimension {DIM}, expected 384"):
        ItemIndex.load(tmp_path, expected_dim=384)
    with pytest.raises(SnapshotMismatchError, match="other-model"):
        ItemIndex.load(tmp_path, expected_model_version="other-model@1")
    unversioned = ItemIndex(DIM)
    unversioned.upsert(["a"], np.ones((1, DIM)))
    unversioned.save(tmp_path / "unversioned")
    with pytest.raises(SnapshotMismatchError, match="None"):
        ItemIndex.load(tmp_path / "unversioned", expected_model_version=MODEL)


def test_missing_and_corrupt_snapshots(built, tmp_path: Path) -> None:
    with pytest.raises(SnapshotNotFoundError):
        ItemIndex.load(tmp_path / "nothing")
    index, _ = built
    generation = index.save(tmp_path)
    (generation / "vectors.npy").write_bytes(b"not numpy")
    with pytest.raises(SnapshotCorruptError):
        ItemIndex.load(tmp_path)
    generation = index.save(tmp_path)
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["count"] += 1
    (generation / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotCorruptError, match="live ids"):
        ItemIndex.load(tmp_path)


def test_a_failed_save_leaves_the_previous_snapshot(built, tmp_path: Path) -> None:
    index, queries = built
    index.save(tmp_path)
    expected = ItemIndex.load(tmp_path).query(queries, 5)
    index.upsert(["unsaveable"], queries[:1], [{"value": object()}])  # not JSON

    with pytest.raises(Exception, match="JSON"):
        index.save(tmp_path)

    assert ItemIndex.load(tmp_path).query(queries, 5) == expected
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith("snapshot-")].__len__() == 1
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".tmp-")]


def test_resave_replaces_and_cleans_up(built, tmp_path: Path) -> None:
    index, queries = built
    first = index.save(tmp_path)
    index.upsert(["late"], queries[:1])
    second = index.save(tmp_path)
    assert not first.exists() and second.exists()
    assert "late" in ItemIndex.load(tmp_path)


def test_search_settings_can_be_overridden_on_load(built, tmp_path: Path) -> None:
    index, queries = built
    index.save(tmp_path)
    assert ItemIndex.load(tmp_path, ef=200).ef == 200
    assert ItemIndex.load(tmp_path, deterministic=True).query(queries, 3).report.path is QueryPath.EXACT
    with pytest.raises(Exception, match="fixed by the snapshot"):
        ItemIndex.load(tmp_path, m=32)


def test_a_snapshot_in_hnswlibs_own_format_still_loads(built, tmp_path: Path) -> None:
    """Snapshots written before the graph was saved as its state hold ``hnsw.bin``."""
    index, queries = built
    expected = index.query(queries, 10)
    generation = index.save(tmp_path)
    (generation / "hnsw.state").unlink()
    index._graph.save_index(str(generation / "hnsw.bin"))
    reseal(generation, checked=False)  # those snapshots had no checksums either

    loaded = ItemIndex.load(tmp_path)

    assert loaded.query(queries, 10) == expected
    assert loaded.ef == 40


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut inside an array
        lambda data: b"not a state" + data[11:],
        lambda data: data + b"\0",
    ],
    ids=["truncated", "other-magic", "trailing-bytes"],
)
def test_a_damaged_graph_state_is_a_corrupt_snapshot(built, tmp_path: Path, damage) -> None:
    index, _ = built
    generation = index.save(tmp_path)
    state = generation / "hnsw.state"
    state.write_bytes(damage(state.read_bytes()))
    reseal(generation)  # written so, not damaged later: the state's own checks must refuse it
    with pytest.raises(SnapshotCorruptError, match="hnsw.state"):
        ItemIndex.load(tmp_path)


def rewrite_state_header(path: Path, change) -> None:
    """``hnsw.state`` with its JSON header changed by ``change(header)`` and the arrays kept."""
    data = path.read_bytes()
    magic = len(hnsw.GRAPH_STATE_MAGIC)
    length = int.from_bytes(data[magic : magic + 8], "little")
    header = json.loads(data[magic + 8 : magic + 8 + length])
    change(header)
    encoded = json.dumps(header).encode()
    path.write_bytes(data[:magic] + len(encoded).to_bytes(8, "little") + encoded + data[magic + 8 + length :])


@pytest.mark.parametrize(
    "change",
    [
        lambda header: header["settings"].update(cur_element_count=header["settings"]["cur_element_count"] + 3),
        lambda header: header["settings"].update(max_elements=header["settings"]["max_elements"] * 2),
        lambda header: header["settings"].update(max_level=header["settings"]["max_level"] + 5),
        lambda header: header["arrays"][0]["shape"].__setitem__(0, 2**62),
        lambda header: header["arrays"][0].update(dtype="<f8"),
    ],
    ids=["more-elements-than-data", "other-capacity", "entry-above-its-level", "huge-array", "other-dtype"],
)
def test_a_graph_state_that_does_not_fit_its_manifest_is_refused(built, tmp_path: Path, change) -> None:
    """hnswlib trusts the sizes it is given: a consistent-looking but wrong state must be refused
    before it reaches hnswlib (with more elements than data it would read past its arrays)."""
    index, _ = built
    generation = index.save(tmp_path)
    rewrite_state_header(generation / "hnsw.state", change)
    reseal(generation)
    with pytest.raises(SnapshotCorruptError, match="hnsw.state"):
        ItemIndex.load(tmp_path)


def test_a_loaded_graph_uses_this_machines_threads(built, tmp_path: Path) -> None:
    """hnswlib pickles its thread count: a snapshot from a 64-core host must not bring 64."""
    index, queries = built
    expected = index.query(queries, 5)
    generation = index.save(tmp_path)
    rewrite_state_header(generation / "hnsw.state", lambda header: header["settings"].update(num_threads=64))
    reseal(generation)
    loaded = ItemIndex.load(tmp_path)
    assert loaded._graph.num_threads == hnswlib.Index(space="cosine", dim=DIM).num_threads != 64
    assert loaded.query(queries, 5) == expected


def test_an_absurd_header_length_is_a_corrupt_snapshot(built, tmp_path: Path) -> None:
    index, _ = built
    generation = index.save(tmp_path)
    state = generation / "hnsw.state"
    data = state.read_bytes()
    magic = len(hnsw.GRAPH_STATE_MAGIC)
    state.write_bytes(data[:magic] + (2**64 - 1).to_bytes(8, "little") + data[magic + 8 :])
    reseal(generation)
    with pytest.raises(SnapshotCorruptError, match="header"):
        ItemIndex.load(tmp_path)


def test_the_manifest_holds_each_payload_files_sha256(built, tmp_path: Path) -> None:
    index, _ = built
    generation = index.save(tmp_path)
    payload = {path.name for path in generation.iterdir()} - {"manifest.json"}

    files = read_manifest(tmp_path).files

    assert set(files) == payload == {"hnsw.state", "vectors.npy", "items.json"}
    assert files == {name: hashlib.sha256((generation / name).read_bytes()).hexdigest() for name in payload}


def flip_last_vector_byte(generation: Path) -> None:
    """Damage no structure check can see: one byte of the last vector."""
    vectors = generation / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0x01
    vectors.write_bytes(bytes(data))


def test_a_byte_damaged_on_disk_is_refused_by_its_checksum(built, tmp_path: Path) -> None:
    """hnswlib trusts the neighbour lists it is given, so damage that keeps every size right
    could crash each start of a worker; the checksum turns it into a rebuild."""
    index, _ = built
    generation = index.save(tmp_path)
    flip_last_vector_byte(generation)

    with pytest.raises(SnapshotCorruptError, match="vectors.npy: its bytes do not match the manifest's checksum"):
        ItemIndex.load(tmp_path)

    reseal(generation, checked=False)  # the same damage in a snapshot without checksums goes unseen
    assert len(ItemIndex.load(tmp_path)) == len(index)


@pytest.mark.parametrize("files", [None, ["hnsw.state"], {"hnsw.state": 5}], ids=["null", "list", "number"])
def test_a_manifest_whose_checksums_are_not_a_map_is_corrupt(built, tmp_path: Path, files) -> None:
    """A corrupt snapshot makes a worker rebuild its index; any other error would stop it."""
    index, _ = built
    generation = index.save(tmp_path)
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["files"] = files
    (generation / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotCorruptError, match="SHA-256"):
        ItemIndex.load(tmp_path)


def test_a_payload_file_gone_is_refused(built, tmp_path: Path) -> None:
    index, _ = built
    generation = index.save(tmp_path)
    (generation / "items.json").unlink()
    with pytest.raises(SnapshotCorruptError, match="items.json"):
        ItemIndex.load(tmp_path)


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    ItemIndex(DIM).save(tmp_path)
    loaded = ItemIndex.load(tmp_path)
    assert len(loaded) == 0
    loaded.upsert(["a"], np.ones((1, DIM)))
    assert loaded.query_one(np.ones(DIM), 1)[0][0] == "a"


def test_queries_run_while_a_snapshot_is_written(built, tmp_path: Path, monkeypatch) -> None:
    """A snapshot only reads: it keeps writers out, not queries (a worker's answers must not
    wait for the disk). The write is held open until a query from another thread is done."""
    index, queries = built
    expected = index.query(queries, 5)
    writing, answered = threading.Event(), threading.Event()
    results, answered_during_save = [], []
    write_graph_state = hnsw._write_graph_state

    def held_open(path: Path, graph) -> None:
        write_graph_state(path, graph)
        writing.set()
        answered_during_save.append(answered.wait(timeout=60))

    def ask() -> None:
        writing.wait(timeout=60)
        results.append(index.query(queries, 5))
        answered.set()

    monkeypatch.setattr(hnsw, "_write_graph_state", held_open)
    asker = threading.Thread(target=ask)
    asker.start()
    index.save(tmp_path)
    asker.join(timeout=60)

    assert answered_during_save == [True], "the query waited for the snapshot to finish"
    assert results == [expected]
    assert ItemIndex.load(tmp_path).query(queries, 5) == expected
