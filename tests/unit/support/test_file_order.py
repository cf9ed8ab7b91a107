"""The suite's file order for make test's xdist workers (tests/support/file_order.py): slowest recorded files
first, each file's tests together and in their order, nothing added or lost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.support.file_order import slowest_first

IDS = [
    "tests/unit/test_a.py::test_1",
    "tests/unit/test_a.py::test_2",
    "tests/integration/test_slow.py::test_x",
    "tests/unit/test_b.py::test_1",
    "tests/integration/test_slow.py::test_y",
    "tests/integration/test_slower.py::test_z",
]


def test_recorded_files_come_first_slowest_first_and_the_rest_keep_their_order():
    seconds = {"tests/integration/test_slow.py": 120.0, "tests/integration/test_slower.py": 300.0}
    order = [IDS[i] for i in slowest_first(IDS, seconds)]
    assert order == [
        "tests/integration/test_slower.py::test_z",
        "tests/integration/test_slow.py::test_x",
        "tests/integration/test_slow.py::test_y",
        "tests/unit/test_a.py::test_1",
        "tests/unit/test_a.py::test_2",
        "tests/unit/test_b.py::test_1",
    ]


def test_no_record_changes_nothing_in_a_collection():
    collected = sorted(IDS)  # pytest collects each file's tests together
    assert slowest_first(collected, {}) == list(range(len(collected)))


@given(
    st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 9)), max_size=30),
    st.dictionaries(st.sampled_from("abcdef"), st.floats(0, 1e4)),
)
def test_a_permutation_that_keeps_each_files_tests_together_and_in_order(tests, seconds):
    ids = [f"tests/test_{f}.py::test_{n}_{i}" for i, (f, n) in enumerate(tests)]
    record = {f"tests/test_{f}.py": s for f, s in seconds.items()}
    order = slowest_first(ids, record)
    assert sorted(order) == list(range(len(ids)))
    files = [ids[i].split("::")[0] for i in order]
    assert all(files.index(f) + files.count(f) - 1 == len(files) - 1 - files[::-1].index(f) for f in files)
    for f in set(files):
        mine = [i for i in order if ids[i].startswith(f + "::")]
        assert mine == sorted(mine)
    recorded = [record.get(f, 0.0) for f in dict.fromkeys(files)]
    assert recorded == sorted(recorded, reverse=True)
