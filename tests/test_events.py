"""The in-process event bus: ordering, property state, isolation of broken subscribers."""

from __future__ import annotations

import threading

from nvr.events import Event, EventBus


def test_property_lifecycle_and_current_state() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    src = (("ReceiverToken", "R1"),)
    first = bus.publish_property("tns1:Receiver/State", src, (("State", "Connecting"),))
    second = bus.publish_property("tns1:Receiver/State", src, (("State", "Connected"),))
    assert (first.property_operation, second.property_operation) == ("Initialized", "Changed")
    current = bus.current_properties()
    assert [e.data_dict()["State"] for e in current] == ["Connected"]
    assert current[0].property_operation == "Initialized"
    bus.delete_property("tns1:Receiver/State", src)
    assert bus.current_properties() == []
    assert [e.seq for e in seen] == sorted(e.seq for e in seen)


def test_broken_subscriber_does_not_stop_others() -> None:
    bus = EventBus()
    got: list[str] = []

    def broken(_: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    sid = bus.subscribe(lambda e: got.append(e.topic))
    bus.publish(Event("tns1:A"))
    bus.unsubscribe(sid)
    bus.publish(Event("tns1:B"))
    assert got == ["tns1:A"]


def test_concurrent_publishers_get_unique_increasing_seq() -> None:
    bus = EventBus()
    seqs: list[int] = []
    lock = threading.Lock()

    def record(e: Event) -> None:
        with lock:
            seqs.append(e.seq)

    bus.subscribe(record)
    threads = [
        threading.Thread(target=lambda: [bus.publish(Event("tns1:X")) for _ in range(500)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, 2001))
