"""livemetrics/logs.py: every process's log lines are JSON objects with the same fields."""

from __future__ import annotations

import json
import logging
import logging.config
import subprocess
import sys

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from livemetrics.logs import JsonFormatter, dict_config

FIELDS = {"ts", "level", "logger", "msg", "service", "pid"}


def record(msg: str, *args, exc=None, **extra) -> logging.LogRecord:
    r = logging.getLogger("livemetrics.test").makeRecord(
        "livemetrics.test", logging.WARNING, __file__, 1, msg, args, exc, extra=extra or None
    )
    return r


def test_the_fields_the_extras_and_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        exc = sys.exc_info()
    line = JsonFormatter("sink").format(record("stored %d rows", 5, exc=exc, table="events"))
    out = json.loads(line)
    assert FIELDS <= out.keys()
    assert (out["level"], out["logger"], out["msg"], out["service"], out["table"]) == (
        "warning",
        "livemetrics.test",
        "stored 5 rows",
        "sink",
        "events",
    )
    assert "ValueError: boom" in out["exc"] and "\n" not in line


@hsettings(max_examples=200)
@given(
    msg=st.text(),
    extra=st.dictionaries(
        st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True),
        st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.none(), st.lists(st.integers(), max_size=3)),
    ),
)
def test_any_message_and_extras_make_one_parseable_line(msg, extra):
    extra = {k: v for k, v in extra.items() if k not in vars(logging.makeLogRecord({})) and k != "message"}
    line = JsonFormatter("worker").format(record("%s", msg, **extra))
    assert "\n" not in line
    out = json.loads(line)
    assert out["msg"] == msg and out["service"] == "worker"
    for k, v in extra.items():
        assert k in FIELDS or out[k] == v  # an extra never replaces one of the common fields


def _run(code: str) -> list[dict]:
    """Run ``code`` in a fresh interpreter (a process's own logging set-up); its stderr, parsed."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines, "no log line"
    return [json.loads(ln) for ln in lines]  # every line is JSON


def test_configure_puts_libraries_and_livemetrics_on_the_same_json_lines():
    out = _run(
        "import logging; from livemetrics import logs; logs.configure('gateway'); "
        "logging.getLogger('livemetrics.gateway').info('up'); logging.getLogger('uvicorn.error').warning('w'); "
        "logging.getLogger('aiokafka').info('hidden'); logs.configure('gateway'); "
        "logging.getLogger('livemetrics.x').info('once')"
    )
    assert [(o["logger"], o["msg"]) for o in out] == [
        ("livemetrics.gateway", "up"),
        ("uvicorn.error", "w"),
        ("livemetrics.x", "once"),
    ]
    assert all(FIELDS <= o.keys() and o["service"] == "gateway" for o in out)


def test_the_dict_config_faust_takes_gives_the_same_lines():
    out = _run(
        "import logging, logging.config; from livemetrics import logs; "
        "logging.config.dictConfig(logs.dict_config('worker')); "
        "logging.getLogger('livemetrics.streams').info('i'); logging.getLogger('faust').warning('f')"
    )
    assert [(o["logger"], o["service"]) for o in out] == [("livemetrics.streams", "worker"), ("faust", "worker")]
    assert all(FIELDS <= o.keys() for o in out)
    assert dict_config("worker")["disable_existing_loggers"] is False  # loggers made at import keep working
