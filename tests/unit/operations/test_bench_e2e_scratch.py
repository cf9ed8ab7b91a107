"""``bench e2e``'s run directory (~0.6 GB after a ladder): removed after a run that ended well, kept and
named after one that failed (its logs say why)."""

from __future__ import annotations

import tempfile

import pytest

from operations.bench.e2e import scratch_dir


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_run_that_ends_well_leaves_no_directory(tmp_root):
    with scratch_dir() as d:
        (d / "kafka").mkdir()
        (d / "kafka" / "00000000000000000000.log").write_bytes(b"x" * 4096)
        assert d.parent == tmp_root
    assert not d.exists()
    assert list(tmp_root.iterdir()) == []


def test_a_failed_run_keeps_its_directory_and_names_it(tmp_root, capsys):
    with pytest.raises(RuntimeError, match="the pipeline did not count"):
        with scratch_dir() as d:
            (d / "logs").mkdir()
            (d / "logs" / "worker.log").write_text("what went wrong")
            raise RuntimeError("the pipeline did not count a warm-up event within 120 s")
    assert (d / "logs" / "worker.log").read_text() == "what went wrong"
    assert f"kept in {d}" in capsys.readouterr().err
