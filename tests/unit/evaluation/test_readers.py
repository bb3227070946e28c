"""The loaders on the real files' first rows (mapped by hand here) and on the whole files."""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from pathlib import Path

import pytest

from stream.engine import InputFormatError
from stream.engine.replay import read_events_csv, read_retailrocket
from stream.evaluation import LoggedEvent, load_events

TAOBAO = "taobao_userbehavior/UserBehavior_head84475.csv"
RETAILROCKET = "retailrocket/events_sample_5000visitors.csv"
HEAD_ROWS = 200


def _head(path: Path, lines: int, out: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(itertools.islice(csv.reader(handle), lines))
    with open(out, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return rows


def test_taobao_first_rows(shared_data: Path, tmp_path: Path) -> None:
    rows = _head(shared_data / TAOBAO, HEAD_ROWS, tmp_path / "head.csv")
    assert rows[0] == ["1", "2268318", "2520377", "pv", "1511544070"]  # the original's well-known first line
    kinds = {"pv": "click", "fav": "cart", "cart": "cart", "buy": "purchase"}
    expected = [LoggedEvent(user, item, kinds[behaviour], int(ts) * 1000) for user, item, _, behaviour, ts in rows]
    expected.sort(key=lambda event: event.ts)  # stable: equal times keep file order
    assert load_events(tmp_path / "head.csv", "taobao") == expected


def test_taobao_whole_file(shared_data: Path) -> None:
    events = load_events(shared_data / TAOBAO, "taobao")
    assert len(events) == 84_475
    counts = Counter(event.kind for event in events)
    assert counts == {"click": 75_872, "cart": 4_497 + 2_356, "purchase": 1_750}  # PROVENANCE.md's counts
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(events))


def test_retailrocket_first_rows(shared_data: Path, tmp_path: Path) -> None:
    rows = _head(shared_data / RETAILROCKET, HEAD_ROWS, tmp_path / "head.csv")
    header = rows[0]
    assert header[:5] == ["timestamp", "visitorid", "event", "itemid", "transactionid"]
    kinds = {"view": "click", "addtocart": "cart", "transaction": "purchase"}
    expected = [LoggedEvent(row[1], row[3], kinds[row[2]], int(row[0])) for row in rows[1:]]
    expected.sort(key=lambda event: event.ts)
    assert load_events(tmp_path / "head.csv", "retailrocket") == expected
    raw = read_retailrocket(tmp_path / "head.csv")
    orders = {event["event_id"]: event.get("order_id") for event in raw}
    for line, row in enumerate(rows[1:], start=2):
        assert orders[str(line)] == (row[4] or None)


def test_retailrocket_whole_file(shared_data: Path) -> None:
    events = load_events(shared_data / RETAILROCKET, "retailrocket")
    assert Counter(event.kind for event in events) == {"click": 9_076, "cart": 263, "purchase": 46}
    assert len({event.user for event in events}) == 5_000


def test_generic_csv_from_real_rows(shared_data: Path, tmp_path: Path) -> None:
    rows = _head(shared_data / TAOBAO, 50, tmp_path / "head.csv")
    kinds = {"pv": "click", "fav": "cart", "cart": "cart", "buy": "purchase"}
    generic = tmp_path / "generic.csv"
    generic.write_text(
        "user,item,kind,ts\n" + "".join(f"{u},{i},{kinds[b]},{t}\n" for u, i, _, b, t in rows), encoding="utf-8"
    )
    assert load_events(generic, "generic") == load_events(tmp_path / "head.csv", "taobao")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user,item,kind\n1,2,click\n", "expected a header"),
        ("user,item,kind,ts\n1,2,view,10\n", ":2: kind must be click, cart or purchase"),
        ("user,item,kind,ts\n1,2,click,10\n1,,click,11\n", ":3: expected 'user,item,kind,ts'"),
        ("user,item,kind,ts\n1,2,click,soon\n", ":2: ts must be a number"),
        ("user,item,kind,ts\n", "no events"),
    ],
)
def test_generic_csv_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputFormatError, match=message):
        read_events_csv(path)


def test_retailrocket_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,visitorid,event,itemid\n1433221332117,257597,click,355908\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=":2: not a RetailRocket event row"):
        read_retailrocket(path)
    path.write_text("timestamp,visitorid,event,itemid\nsoon,257597,view,355908\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=":2: bad timestamp"):
        read_retailrocket(path)
