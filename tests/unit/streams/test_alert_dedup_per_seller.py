"""The sessions agent alerts once per (seller, event id): a retried payment_failed alerts once, and one
seller's event id (chosen by its sender) never silences another seller's alert."""

from streams import session_memory as memory


def test_first_alert_is_per_seller_and_event_id():
    memory._alerted.clear()
    assert memory.first_alert("shop-a", "ev-1")
    assert memory.first_alert("shop-b", "ev-1")  # same id, another seller: its own alert
    assert not memory.first_alert("shop-a", "ev-1") and not memory.first_alert("shop-b", "ev-1")


def test_the_memory_stays_bounded(monkeypatch):
    memory._alerted.clear()
    monkeypatch.setattr(memory, "ALERTED_MAX", 3)
    for i in range(10):
        assert memory.first_alert("shop-a", f"ev-{i}")
    assert len(memory._alerted) == 3 and memory.first_alert("shop-a", "ev-0")  # the oldest was let go
