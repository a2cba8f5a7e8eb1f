"""Pull points without HTTP: delivery order, initial property states, bounded queues, waiting,
expiry and shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from nvr.events import Event, EventBus
from nvr.onvif.events_filter import EventFilter, parse_topic_expression
from nvr.onvif.events_pullpoint import (
    MAX_LIFETIME,
    PullInProgress,
    PullPointManager,
    PullPointsExhausted,
    UnknownPullPoint,
)
from nvr.onvif.events_topics import CONCRETE_SET, TNS1

RECEIVER = "tns1:Receiver/ChangeState"
TRACK = "tns1:RecordingHistory/Track/State"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def topic_filter(expression: str) -> EventFilter:
    return EventFilter((parse_topic_expression(expression, CONCRETE_SET, {"tns1": TNS1}),))


def receiver_event(n: int) -> Event:
    return Event(RECEIVER, (("ReceiverToken", f"R{n}"),), (("NewState", "Connected"),))


def track_state(track: str, present: bool) -> tuple[str, tuple, tuple]:
    source = (("RecordingToken", "REC1"), ("Track", track))
    return TRACK, source, (("IsDataPresent", "true" if present else "false"),)


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def manager(bus: EventBus) -> PullPointManager:
    manager = PullPointManager(bus, max_pull_points=4, queue_limit=5)
    manager.start()
    return manager


def test_messages_in_order_exactly_once_under_concurrent_publishers(bus: EventBus) -> None:
    manager = PullPointManager(bus, queue_limit=100_000)
    manager.start()
    point = manager.create(EventFilter(), None)
    publishers = [
        threading.Thread(
            target=lambda k=k: [bus.publish(receiver_event(k * 1000 + i)) for i in range(300)]
        )
        for k in range(4)
    ]
    got: list[Event] = []
    for thread in publishers:
        thread.start()
    while len(got) < 1200:
        got += manager.pull(point, 2.0, 1000)
    for thread in publishers:
        thread.join()
    assert [e.seq for e in got] == sorted(e.seq for e in got)
    assert len({e.seq for e in got}) == 1200
    assert manager.pull(point, 0, 100) == []


def test_initial_states_then_changes_and_synchronization(
    bus: EventBus, manager: PullPointManager
) -> None:
    bus.publish_property(*track_state("VIDEO001", True))
    bus.publish_property(*track_state("AUDIO001", True))
    bus.publish(receiver_event(1))  # not a property: not replayed
    point = manager.create(topic_filter("tns1:RecordingHistory//."), None)
    first = manager.pull(point, 0, 10)
    assert [(e.property_operation, e.source[1][1]) for e in first] == [
        ("Initialized", "VIDEO001"),
        ("Initialized", "AUDIO001"),
    ]
    bus.publish_property(*track_state("VIDEO001", False))
    bus.delete_property(TRACK, (("RecordingToken", "REC1"), ("Track", "AUDIO001")))
    changes = manager.pull(point, 0, 10)
    assert [e.property_operation for e in changes] == ["Changed", "Deleted"]
    manager.synchronize(point)
    again = manager.pull(point, 0, 10)
    assert [(e.property_operation, e.data) for e in again] == [
        ("Initialized", (("IsDataPresent", "false"),))
    ]


def test_changed_only_suppresses_initialized_and_deleted(
    bus: EventBus, manager: PullPointManager
) -> None:
    bus.publish_property(*track_state("VIDEO001", True))
    point = manager.create(EventFilter(), None, changed_only=True)
    bus.publish_property(*track_state("AUDIO001", True))  # a new instance: Initialized
    bus.publish_property(*track_state("VIDEO001", False))
    bus.delete_property(TRACK, (("RecordingToken", "REC1"), ("Track", "VIDEO001")))
    assert [e.property_operation for e in manager.pull(point, 0, 10)] == ["Changed"]


def test_states_published_before_the_manager_started_are_known(bus: EventBus) -> None:
    bus.publish_property(*track_state("VIDEO001", True))
    bus.publish_property(*track_state("META001", True))
    bus.delete_property(TRACK, (("RecordingToken", "REC1"), ("Track", "META001")))
    manager = PullPointManager(bus)
    manager.start()
    point = manager.create(EventFilter(), None)
    assert [e.source[1][1] for e in manager.pull(point, 0, 10)] == ["VIDEO001"]


def test_a_stalled_client_loses_the_oldest_messages(
    bus: EventBus, manager: PullPointManager
) -> None:
    point = manager.create(EventFilter(), None)
    for n in range(8):
        bus.publish(receiver_event(n))
    got = manager.pull(point, 0, 100)
    assert [e.source[0][1] for e in got] == ["R3", "R4", "R5", "R6", "R7"]
    assert point.dropped == 3 and manager.stats()["dropped"] == 3


def test_pull_waits_for_the_first_event_or_the_timeout(
    bus: EventBus, manager: PullPointManager
) -> None:
    point = manager.create(EventFilter(), None)
    started = time.monotonic()
    assert manager.pull(point, 0.3, 10) == []
    assert 0.3 <= time.monotonic() - started < 1.0
    threading.Timer(0.2, lambda: bus.publish(receiver_event(1))).start()
    started = time.monotonic()
    assert len(manager.pull(point, 10, 10)) == 1
    assert time.monotonic() - started < 2.0


def test_one_waiting_pull_per_point_and_close_ends_it(manager: PullPointManager) -> None:
    point = manager.create(EventFilter(), None)
    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.append(manager.pull(point, 30, 10)))
    waiter.start()
    deadline = time.monotonic() + 5
    while not point.pulling and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(PullInProgress):
        manager.pull(point, 0, 10)
    started = time.monotonic()
    manager.close()
    waiter.join(5)
    assert result == [[]] and time.monotonic() - started < 2


def test_unsubscribe_wakes_the_waiting_pull(manager: PullPointManager) -> None:
    point = manager.create(EventFilter(), None)
    errors: list[BaseException] = []

    def pull() -> None:
        try:
            manager.pull(point, 30, 10)
        except UnknownPullPoint as error:
            errors.append(error)

    waiter = threading.Thread(target=pull)
    waiter.start()
    while not point.pulling:
        time.sleep(0.01)
    manager.unsubscribe(point)
    waiter.join(5)
    assert len(errors) == 1
    with pytest.raises(UnknownPullPoint):
        manager.get(point.id)


def test_lifetime_keepalive_expiry_and_capacity(bus: EventBus) -> None:
    clock = Clock()
    manager = PullPointManager(bus, clock=clock, max_pull_points=2)
    manager.start()
    short = manager.create(EventFilter(), clock.now + 10)
    lasting = manager.create(EventFilter(), clock.now + 10 * MAX_LIFETIME)
    assert lasting.termination == clock.now + MAX_LIFETIME  # clamped
    with pytest.raises(PullPointsExhausted):
        manager.create(EventFilter(), None)
    clock.now += 9
    manager.pull(short, 0, 1)  # a pull keeps it alive for its keep-alive (10 s) from now
    assert short.termination == clock.now + 10
    clock.now += 11
    assert manager.reap() == 1 and manager.count == 1
    with pytest.raises(UnknownPullPoint):
        manager.get(short.id)
    assert manager.renew(lasting, clock.now + 30) == clock.now + 30
    clock.now += 31
    with pytest.raises(UnknownPullPoint):  # expired pull points vanish on access too
        manager.get(lasting.id)
    assert manager.count == 0
    manager.create(EventFilter(), None)
    clock.now += 61
    manager.create(EventFilter(), None)
    manager.create(EventFilter(), None)  # the expired one was reaped to make room
    assert manager.count == 2
