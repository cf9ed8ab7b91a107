"""Output that survives its reader going away (operations/console.py)."""

from __future__ import annotations

import io
import os
import sys

from operations import console


def _pipe_stream():
    r, w = os.pipe()
    return r, io.TextIOWrapper(os.fdopen(w, "wb"), write_through=True)


def test_a_pipe_whose_reader_closed_is_output_gone_and_say_never_raises(monkeypatch):
    r, stream = _pipe_stream()
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", stream)
    console.say("hello", stream)
    assert os.read(r, 100) == b"hello\n"
    assert not console.output_gone()
    os.close(r)  # the reader (tee) is gone
    assert console.output_gone()
    console.say("stopping ...", stream)  # EPIPE: swallowed, the stream now points at /dev/null
    console.say("stopped.", stream)
    assert not console.output_gone()
    stream.close()


def test_a_regular_file_is_never_output_gone(monkeypatch, tmp_path):
    with open(tmp_path / "out", "w") as f:
        monkeypatch.setattr(sys, "stdout", f)
        monkeypatch.setattr(sys, "stderr", f)
        assert not console.output_gone()
