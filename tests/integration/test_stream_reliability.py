"""Workers that restart, share partitions, die, and read out-of-order input: nothing lost,
nothing counted twice, and the same answers as a run that never stopped."""

from __future__ import annotations

import random
import time
import warnings
from collections import defaultdict
from itertools import permutations
from typing import Any

import orjson
import pytest

from stream.engine import CHANNELS, AssociationEngine, EngineConfig, Event, SessionConfig
from stream.partitions import partition_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW_MS = int(time.time() * 1000)
TOPIC_OF_KIND = {"click": "clicks", "cart": "carts", "purchase": "purchases"}
ITEMS = [f"item{number:02d}" for number in range(14)]
SESSION_GAP_MS = 30 * 60 * 1000
# The tests produce the three event topics one after the other, so a user's events arrive
# hours apart in event time across topics: the allowed lateness must cover that (the idle
# flush then applies them in event-time order).
PRODUCED_TOPIC_BY_TOPIC = {"XSELL_LATENESS_S": "86400"}
ALLOWED = {tuple(channel.split("->")) for channel in CHANNELS}


def synthetic_log(users: int, *, seed: int, sessions: int = 2, per_session: tuple[int, int] = (2, 5)) -> list[dict]:
    """Users with a few sessions of clicks, carts and purchases over 14 items, in event time.

    Items come in planted pairs (item00 with item01, ...), so associations are not uniform.
    """
    rng = random.Random(seed)
    events = []
    for user in range(users):
        start = NOW_MS - 6 * 3_600_000 + rng.randrange(3_600_000)
        for session in range(sessions):
            t = start + session * 2 * SESSION_GAP_MS
            pair = rng.randrange(len(ITEMS) // 2)
            items = [ITEMS[2 * pair], ITEMS[2 * pair + 1]] + rng.sample(ITEMS, rng.randint(*per_session) - 2)
            for item in items:
                t += rng.randrange(1_000, 60_000)
                kind = rng.choices(["click", "cart", "purchase"], weights=[6, 2, 2])[0]
                events.append(
                    {
                        "event_id": f"s{seed}-e{len(events)}",
                        "user_id": f"s{seed}-u{user}",
                        "item_id": item,
                        "ts": t,
                        "kind": kind,
                    }
                )
    return events


def brute_force_counts(events: list[dict]) -> tuple[int, dict, dict]:
    """N, item counts per kind and pair counts per channel, recounted from the definition.

    A transaction is one user's events with no gap over 30 minutes; (A as a) → (B as b)
    counts once per transaction when some a-event of A is at or before some b-event of B.
    """
    by_user = defaultdict(list)
    for event in events:
        by_user[event["user_id"]].append(event)
    transactions = []
    for user_events in by_user.values():
        user_events.sort(key=lambda e: (e["ts"], e["event_id"]))
        current = [user_events[0]]
        for previous, event in zip(user_events, user_events[1:], strict=False):
            if event["ts"] - previous["ts"] > SESSION_GAP_MS:
                transactions.append(current)
                current = []
            current.append(event)
        transactions.append(current)
    item_counts: dict = defaultdict(float)
    pair_counts: dict = defaultdict(float)
    for transaction in transactions:
        first = {}
        last = {}
        for event in transaction:
            key = (event["item_id"], event["kind"])
            first[key] = min(first.get(key, event["ts"]), event["ts"])
            last[key] = max(last.get(key, event["ts"]), event["ts"])
            item_counts[key] += 0  # seen
        for key in first:
            item_counts[key] += 1
        for (a, kind_a), (b, kind_b) in permutations(first, 2):
            if a != b and (kind_a, kind_b) in ALLOWED and first[(a, kind_a)] <= last[(b, kind_b)]:
                pair_counts[(a, b, f"{kind_a}->{kind_b}")] += 1
    return len(transactions), dict(item_counts), dict(pair_counts)


def stream_counts(worker) -> tuple[float, dict]:
    """N and pair counts per channel as one worker's HTTP API reports them."""
    pairs = {}
    transactions = 0.0
    for item in ITEMS:
        for channel in CHANNELS:
            response = worker.get(f"/items/{item}/associations", channel=channel, k=100)
            if response.status_code == 404:
                continue
            body = response.json()
            transactions = max(transactions, body["transactions"])
            for rule in body["associations"]:
                pairs[(item, rule["consequent"], channel)] = rule["pair_count"]
    return transactions, pairs


def produce_events(kafka_io, deployment, events: list[dict]) -> None:
    for kind, topic in TOPIC_OF_KIND.items():
        chosen = [{k: v for k, v in e.items() if k != "kind"} for e in events if e["kind"] == kind]
        kafka_io.produce_json(deployment.topic(topic), chosen, "user_id")


def answers_by_trigger(kafka_io, deployment, expected: list[dict], timeout_s: float = 240) -> dict[str, list[dict]]:
    """Answers by trigger event id, read until every expected event has one (or the timeout)."""
    wanted = {event["event_id"] for event in expected}
    seen: set[str] = set()
    read = 0

    def covered(records) -> bool:
        nonlocal read
        for record in records[read:]:
            seen.add(orjson.loads(record.value)["trigger_event_id"])
        read = len(records)
        return wanted <= seen

    found = kafka_io.consume(deployment.topic("cross-recommendations"), done=covered, timeout_s=timeout_s)
    by_trigger = defaultdict(list)
    for record in found:
        answer = orjson.loads(record.value)
        by_trigger[answer["trigger_event_id"]].append(answer)
    return by_trigger


def wait_for_counts(worker, expected_pairs: dict, transactions: int, until) -> dict:
    def matches():
        n, pairs = stream_counts(worker)
        return (n == transactions and pairs == expected_pairs) and pairs

    try:
        return until(matches, 120, every_s=2)
    except AssertionError:
        n, pairs = stream_counts(worker)
        missing = {k: v for k, v in expected_pairs.items() if pairs.get(k) != v}
        extra = {k: v for k, v in pairs.items() if k not in expected_pairs}
        raise AssertionError(
            f"N {n} vs {transactions}; {len(missing)} pairs differ (e.g. "
            f"{list(missing.items())[:3]} got {[pairs.get(k) for k in list(missing)[:3]]}), "
            f"{len(extra)} extra"
        ) from None


def test_restart_recovers_state_and_answers_like_a_run_that_never_stopped(deployment_factory, kafka_io, until):
    catalog = [{"item_id": item, "title": f"Product {item}", "in_stock": True} for item in ITEMS]
    events = synthetic_log(60, seed=4)
    transactions, _, pairs = brute_force_counts(events)
    probe = {"event_id": "probe", "user_id": events[0]["user_id"], "item_id": ITEMS[0], "ts": NOW_MS}

    def run(restart: bool) -> dict:
        deployment = deployment_factory(settings=PRODUCED_TOPIC_BY_TOPIC)
        worker = deployment.worker("w", store="rocksdb").wait_ready()
        kafka_io.produce_json(deployment.topic("catalog"), catalog, "item_id")
        until(lambda: worker.get("/healthz").json()["index_items"] == len(ITEMS), 120)
        produce_events(kafka_io, deployment, events)
        wait_for_counts(worker, pairs, transactions, until)
        answers_by_trigger(kafka_io, deployment, events)  # quiet: every event answered
        if restart:  # the RocksDB store's size: its estimate counts rewritten keys, never fewer
            users = len({event["user_id"] for event in events})

            def user_state_keys() -> float:
                lines = metrics_lines(worker, "xsell_table_keys")
                return sum(float(line.split()[-1]) for line in lines if 'table="user-state"' in line)

            until(lambda: user_state_keys() >= users, 30, message="user-state keys under the users seen")
        before = worker.get(f"/items/{ITEMS[0]}/associations").json()
        profile_before = worker.get(f"/users/{probe['user_id']}/recommendations").json()
        if restart:
            assert worker.stop() == 0, worker.log_tail()
            worker = deployment.worker("w", store="rocksdb").wait_ready()
            assert worker.get(f"/items/{ITEMS[0]}/associations").json() == before
            assert worker.get(f"/users/{probe['user_id']}/recommendations").json() == profile_before
            wait_for_counts(worker, pairs, transactions, until)
        kafka_io.produce_json(deployment.topic("clicks"), [probe], "user_id")
        answer = until(
            lambda: answers_by_trigger(kafka_io, deployment, [*events, probe]).get("probe"),
            120,
            message="probe not answered",
        )
        assert len(answer) == 1
        return answer[0]

    restarted = run(restart=True)
    uninterrupted = run(restart=False)
    assert restarted["items"], "the probe got no recommendations"
    # The same items, in the same order, for the same reasons (the lifts in the reasons come
    # from the recovered counts). Scores may differ in the last float32 bit: the index's rows
    # are in the order the catalog's partitions were read, which differs between the runs, and
    # numpy's float32 matrix product rounds one (query, item) product differently with the
    # item at another row or another number of queries in the call (measured: ~1 in 20
    # products; seen here once as 0.81375 vs 0.813749).
    def without_scores(items):
        return [{key: value for key, value in item.items() if key != "score"} for item in items]

    assert without_scores(restarted["items"]) == without_scores(uninterrupted["items"])
    for mine, theirs in zip(restarted["items"], uninterrupted["items"], strict=True):
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-5), (mine, theirs)


def test_out_of_order_input_counts_like_a_brute_force_recount_and_the_offline_engine(
    deployment_factory, kafka_io, until
):
    """Each user's events are shuffled within 30 s of event time and spread over three topics."""
    events = synthetic_log(150, seed=6)
    transactions, item_counts, pairs = brute_force_counts(events)

    offline = AssociationEngine(EngineConfig(profiles=None, sessions=SessionConfig(allowed_lateness_ms=86_400_000)))
    offline.process_events(Event(e["event_id"], e["user_id"], e["item_id"], e["kind"], e["ts"]) for e in events)
    offline.flush()
    offline_pairs = {
        (rule.antecedent, rule.consequent, channel): rule.pair_count
        for channel in CHANNELS
        for rule in offline.rules(channel)
    }
    assert offline.transactions() == transactions
    assert offline_pairs == pairs

    rng = random.Random(7)
    jittered = sorted(events, key=lambda e: e["ts"] + rng.randrange(30_000))
    probes = [
        {"event_id": f"probe-{user}", "user_id": user, "item_id": ITEMS[3], "ts": NOW_MS}
        for user in sorted({e["user_id"] for e in events})[:10]
    ]
    answers = []
    for arrival in (events, jittered):
        deployment = deployment_factory(settings=PRODUCED_TOPIC_BY_TOPIC)
        worker = deployment.worker("w").wait_ready()
        produce_events(kafka_io, deployment, arrival)
        wait_for_counts(worker, pairs, transactions, until)
        answers_by_trigger(kafka_io, deployment, events)
        kafka_io.produce_json(deployment.topic("clicks"), probes, "user_id")
        by_trigger = answers_by_trigger(kafka_io, deployment, events + probes)
        answers.append({p["event_id"]: by_trigger[p["event_id"]][0]["items"] for p in probes})
        worker.stop()
    assert answers[0] == answers[1]
    assert any(answers[0].values()), "the probes got no recommendations"


def metrics_lines(worker, name: str) -> list[str]:
    return [line for line in worker.get("/metrics").text.splitlines() if line.startswith(name + "{")]


def assigned(worker, deployment) -> set[str]:
    """The input partitions a worker holds (from its lag metric)."""
    return {
        line.split('partition="')[1].split('"')[0]
        for line in metrics_lines(worker, "xsell_consumer_lag_messages")
        if f'topic="{deployment.topic("clicks")}"' in line
    }


def probes_on_every_partition(deployment, tag: str) -> list[dict]:
    """A click, a cart and a purchase for a user of each input partition: once all are answered,
    every input topic-partition has been read past what was produced before them."""
    probes = []
    for partition in range(deployment.partitions):
        users = (f"{tag}-u{n}" for n in range(10_000))
        user = next(user for user in users if partition_for(user.encode(), deployment.partitions) == partition)
        probes += [
            {"event_id": f"{user}-{kind}", "user_id": user, "item_id": ITEMS[0], "ts": NOW_MS, "kind": kind}
            for kind in TOPIC_OF_KIND
        ]
    return probes


def test_a_rebalance_commits_what_was_answered_before_the_partitions_move(deployment_factory, kafka_io, until):
    """Faust forgets the acks of revoked partitions before its revocation commit
    (``XsellConsumer.on_partitions_revoked``). With periodic commits an hour apart, only that
    commit keeps the worker that stays, and the one that joins, from answering again what was
    answered before the rebalance."""
    deployment = deployment_factory(settings={**PRODUCED_TOPIC_BY_TOPIC, "XSELL_COMMIT_INTERVAL_S": "3600"})
    first = deployment.worker("w1").wait_ready()
    events = synthetic_log(60, seed=8)
    produce_events(kafka_io, deployment, events)
    answers_by_trigger(kafka_io, deployment, events)
    second = deployment.worker("w2").wait_ready()
    until(lambda: assigned(first, deployment) and assigned(second, deployment), 90, message="partitions not shared")
    probes = probes_on_every_partition(deployment, "s8-probe")
    produce_events(kafka_io, deployment, probes)
    by_trigger = answers_by_trigger(kafka_io, deployment, events + probes)
    assert len(by_trigger) == len(events) + len(probes)
    repeated = {trigger: len(found) for trigger, found in by_trigger.items() if len(found) > 1}
    assert not repeated, f"{len(repeated)} of {len(events)} events were answered again after the rebalance"


def test_two_workers_share_partitions_and_a_graceful_stop_loses_and_repeats_nothing(
    deployment_factory, kafka_io, until
):
    """One retry, for one failure only. A table recovery may rarely never finish after a
    rebalance, a stall not explained yet (docs/OPERATIONS.md, XsellConsumerLagGrowing, item 5 (b)).
    When events go unanswered, the scenario runs once more on a fresh deployment, with a
    warning. Duplicate answers fail the first attempt at once, and a second stall fails the
    test."""
    missing = _graceful_handover(deployment_factory(settings=PRODUCED_TOPIC_BY_TOPIC), kafka_io, until, 120)
    if missing:
        warnings.warn(
            f"{len(missing)} events were never answered after the rebalance (the known stall); "
            "running the scenario once more on a fresh deployment",
            stacklevel=1,
        )
        missing = _graceful_handover(deployment_factory(settings=PRODUCED_TOPIC_BY_TOPIC), kafka_io, until, 240)
    assert not missing, f"{len(missing)} events were never answered"


def _graceful_handover(deployment, kafka_io, until, answer_timeout_s: float) -> list[str]:
    """Two workers share the partitions, one stops gracefully, the other takes over. Returns the
    events never answered; fails at once on a duplicate answer or wrong counts."""
    first = deployment.worker("w1")
    second = deployment.worker("w2")
    first.wait_ready()
    second.wait_ready()

    until(lambda: assigned(first, deployment) and assigned(second, deployment), 90, message="partitions not shared")
    assert assigned(first, deployment) | assigned(second, deployment) == {"0", "1", "2", "3"}
    assert not assigned(first, deployment) & assigned(second, deployment)

    events = synthetic_log(200, seed=5)
    half = len(events) // 2
    produce_events(kafka_io, deployment, events[:half])
    answers_by_trigger(kafka_io, deployment, events[:half])
    # Each worker answers for every user: requests for another worker's users are routed.
    for user in sorted({e["user_id"] for e in events[:half]})[:12]:
        answers = [worker.get(f"/users/{user}/recommendations") for worker in (first, second)]
        assert [a.status_code for a in answers] == [200, 200], (user, [a.text for a in answers])
        assert answers[0].json() == answers[1].json()
    assert second.stop() == 0, second.log_tail()
    until(lambda: assigned(first, deployment) == {"0", "1", "2", "3"}, 90, message="partitions did not move")
    produce_events(kafka_io, deployment, events[half:])
    by_trigger = answers_by_trigger(kafka_io, deployment, events, timeout_s=answer_timeout_s)
    missing = [e["event_id"] for e in events if e["event_id"] not in by_trigger]
    repeated = {trigger: len(found) for trigger, found in by_trigger.items() if len(found) > 1}
    assert not repeated, f"{len(repeated)} events were answered twice after a graceful stop"
    if missing:
        return missing
    transactions, _, pairs = brute_force_counts(events)
    wait_for_counts(first, pairs, transactions, until)
    return []


def _diagnosis(kafka_io, deployment) -> str:
    """Dead-letter reasons and the workers' last log lines, for a failure message."""
    reasons = defaultdict(int)
    for letter in kafka_io.consume_json(deployment.topic("dead-letter"), idle_s=2):
        reasons[letter.get("reason")] += 1
    logs = "\n".join(f"--- {worker.name}:\n{worker.log_tail(25)}" for worker in deployment.workers)
    return f"dead letters by reason: {dict(reasons)}\n{logs}"


def run_kill_9_scenario(deployment, kafka_io, until) -> tuple[list[dict], Any]:
    """Two workers, 20,000 events in thirds; kill -9 one mid-stream, restart it; the first
    worker (whose HTTP API reads the counts) and the events."""
    deployment.settings.update(PRODUCED_TOPIC_BY_TOPIC)
    first = deployment.worker("w1")
    second = deployment.worker("w2")
    first.wait_ready()
    second.wait_ready()
    events = synthetic_log(2500, seed=9, sessions=2, per_session=(3, 5))[:20_000]
    assert len(events) >= 15_000
    third = len(events) // 3
    produce_events(kafka_io, deployment, events[:third])
    # Kill while both workers are busy with the first third (a quarter of it answered).
    until(lambda: len(kafka_io.consume(deployment.topic("cross-recommendations"), idle_s=0.5)) > third // 4, 120)
    second.kill()
    produce_events(kafka_io, deployment, events[third : 2 * third])
    deployment.worker("w2").wait_ready()
    produce_events(kafka_io, deployment, events[2 * third :])
    return events, first


def test_kill_9_of_one_worker_loses_nothing_and_counts_nothing_twice(deployment, kafka_io, until, capsys):
    events, first = run_kill_9_scenario(deployment, kafka_io, until)

    by_trigger = answers_by_trigger(kafka_io, deployment, events, timeout_s=600)
    missing = [e["event_id"] for e in events if e["event_id"] not in by_trigger]
    assert not missing, f"{len(missing)} valid events were never answered; {_diagnosis(kafka_io, deployment)}"
    transactions, _, pairs = brute_force_counts(events)
    duplicates = sum(len(found) - 1 for found in by_trigger.values())
    wait_for_counts(first, pairs, transactions, until)
    with capsys.disabled():
        print(
            f"\nkill -9: {len(events)} events, {duplicates} duplicate answers "
            f"({duplicates / len(events):.2%}), counts equal the brute-force recount"
        )


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_split_roles_answer_every_event_once_and_count_like_a_brute_force_recount(
    deployment_factory, kafka_io, until, guarantee
):
    """Two interactions workers and a co-occurrence worker (``XSELL_ROLE``) in one consumer group:
    each gets only its role's partitions, and together they answer and count as one worker.

    The co-occurrence worker starts first, so it leads the group and computes the assignment of
    tables it does not have (the user tables' changelogs, with standby replicas between the
    two interactions workers; ``XsellAssignor``). Under exactly-once the roles' transactional
    producers must not share ids (they fenced each other)."""
    deployment = deployment_factory(settings={**PRODUCED_TOPIC_BY_TOPIC, "XSELL_PROCESSING_GUARANTEE": guarantee})
    counting = deployment.worker("counting", role="cooccurrence").wait_ready()
    answering = deployment.worker("answering", role="interactions")
    second = deployment.worker("answering-2", role="interactions")
    answering.wait_ready()
    second.wait_ready()
    until(lambda: assigned(answering, deployment) and assigned(second, deployment), 90, message="not shared")

    events = synthetic_log(150, seed=10)
    produce_events(kafka_io, deployment, events)
    by_trigger = answers_by_trigger(kafka_io, deployment, events)
    assert len(by_trigger) == len(events)
    assert all(len(found) == 1 for found in by_trigger.values())
    transactions, _, pairs = brute_force_counts(events)
    wait_for_counts(answering, pairs, transactions, until)

    def topics_held(worker) -> set[str]:
        """xsell's topics the worker consumes (not Faust's own leader topic, which one of them holds)."""
        topics = {
            line.split('topic="')[1].split('"')[0] for line in metrics_lines(worker, "xsell_consumer_lag_messages")
        }
        return {topic.removeprefix(deployment.prefix) for topic in topics if topic.startswith(deployment.prefix)}

    until(lambda: "item-pairs" in topics_held(counting), 30, message="the co-occurrence worker holds no item-pairs")
    assert topics_held(counting) == {"item-pairs"}
    assert {"clicks", "carts", "purchases"} <= topics_held(answering)
    assert "item-pairs" not in topics_held(answering)
    tables = {line.split('table="')[1].split('"')[0] for line in metrics_lines(counting, "xsell_table_keys")}
    assert tables == {"cooccurrence"}
    assert counting.get(f"/users/{events[0]['user_id']}/recommendations").status_code == 404
    for user in sorted({event["user_id"] for event in events})[:8]:  # routed to the owner when need be
        answers = [worker.get(f"/users/{user}/recommendations") for worker in (answering, second)]
        assert [answer.status_code for answer in answers] == [200, 200], (user, [a.text for a in answers])
        assert answers[0].json() == answers[1].json()


def test_a_deployment_switches_from_one_worker_to_split_roles_and_counts_on(deployment_factory, kafka_io, until):
    """Roles share the consumer group, changelogs and committed offsets: a deployment that ran
    one ``all`` worker goes on as an interactions and a co-occurrence worker, and the counts
    over both halves equal a recount (nothing counted twice, nothing skipped)."""
    deployment = deployment_factory(settings=PRODUCED_TOPIC_BY_TOPIC)
    events = synthetic_log(160, seed=11)
    half = len(events) // 2
    single = deployment.worker("single").wait_ready()
    produce_events(kafka_io, deployment, events[:half])
    answers_by_trigger(kafka_io, deployment, events[:half])
    transactions, _, pairs = brute_force_counts(events[:half])
    wait_for_counts(single, pairs, transactions, until)
    assert single.stop() == 0, single.log_tail()

    counting = deployment.worker("counting", role="cooccurrence").wait_ready()
    answering = deployment.worker("answering", role="interactions").wait_ready()
    produce_events(kafka_io, deployment, events[half:])
    by_trigger = answers_by_trigger(kafka_io, deployment, events)
    repeated = {trigger: len(found) for trigger, found in by_trigger.items() if len(found) > 1}
    assert not repeated, f"{len(repeated)} events were answered again after the switch"
    transactions, _, pairs = brute_force_counts(events)
    wait_for_counts(answering, pairs, transactions, until)
    assert counting.get("/healthz").status_code == 200
