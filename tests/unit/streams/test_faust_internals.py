"""The Faust internals streams/ uses are exactly the ones it was written against."""

from streams import faust_internals


def test_installed_faust_matches_the_recorded_internals():
    assert faust_internals.changed() == []


def test_a_changed_internal_is_reported(monkeypatch):
    target = "faust.tables.base:Collection._to_key"
    monkeypatch.setitem(faust_internals.FINGERPRINTS, target, "0" * 16)
    assert faust_internals.changed() == [f"{target}: {faust_internals.fingerprint(target)} (recorded {'0' * 16})"]


def test_a_removed_internal_is_reported_as_missing():
    assert faust_internals.fingerprint("faust.tables.base:Collection._no_such_method") == "missing"
