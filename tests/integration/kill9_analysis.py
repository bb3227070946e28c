"""Read a dump of ``test_kill9_dump.py`` and say which side differs from the recount.

``python -m tests.integration.kill9_analysis FILE``
"""

from __future__ import annotations

import sys
from collections import defaultdict

import orjson

from tests.integration.test_stream_reliability import brute_force_counts


def main(path: str) -> None:
    dump = orjson.loads(open(path, "rb").read())
    print("outcome:", dump["outcome"], "| answers", dump["answers"], "for", len(dump["events"]), "events")
    transactions, _, pairs = brute_force_counts(dump["events"])
    payloads = defaultdict(list)
    first_sent = {}
    for _, _, timestamp, _, value in dump["item_pairs"]:
        for item, event_id, _, occurrence, partners, *flag in orjson.loads(value)["updates"]:
            key = (item, event_id)
            payloads[key].append((occurrence, tuple(map(tuple, partners)), tuple(flag)))
            first_sent.setdefault(key, timestamp)
    resent = sum(len(found) - 1 for found in payloads.values())
    differing = sum(1 for found in payloads.values() if len(set(found)) > 1)
    print(f"item-pairs: {len(payloads)} (item, event) updates, {resent} re-sent, {differing} with differing payloads")
    opened = sum(1 for found in payloads.values() if found[0][2][:1] == (1,))
    counted = defaultdict(float)
    for (item, _), found in payloads.items():
        for partner, channel in found[0][1]:
            counted[(item, partner, channel)] += 1
    wrong = {k for k in set(pairs) | set(counted) if pairs.get(k) != counted.get(k)}
    print(f"applying each update once: N {opened} vs {transactions}, {len(wrong)} pair counts differ")
    if dump["outcome"] != "exact":
        side = "the interactions side" if wrong or opened != transactions else "the co-occurrence side or the replica"
        print(f"  → the difference comes from {side}")
    pending = dump["pending"]
    listed = sum(
        1
        for user, (partition, _) in pending["users_with_pending"].items()
        if user in pending["partition_pending"].get(str(partition), [])
    )
    print(f"users still buffering events: {len(pending['users_with_pending'])}, listed in their partition: {listed}")


if __name__ == "__main__":
    main(sys.argv[1])
