"""Load generators for ``bench gateway``: ``wrk`` (C, one thread) with a Lua script that rotates
pre-generated bodies and counts the accepted events, or, without ``wrk``, a lean asyncio HTTP/1.1
client in the calling process. Both post to ``/v1/events`` over keep-alive connections."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from pathlib import Path

from livemetrics import lifeline


async def _client(port: int, requests: list[bytes], stop_at: float, counts: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    length = re.compile(rb"content-length: *(\d+)", re.I)
    try:
        while time.monotonic() < stop_at:
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(int(length.search(head).group(1)))
            status = int(head[9:12])
            if status == 202 and time.monotonic() >= counts["from"]:
                counts["accepted"] += json.loads(body)["accepted"]
            elif status != 202:
                counts["errors"][status] = counts["errors"].get(status, 0) + 1
    finally:
        writer.close()


def asyncio_rate(
    port: int, key: str, user_agent: str, bodies: list[bytes], duration: float, connections: int, warmup: float = 2.0
) -> tuple[float, dict]:
    requests = [
        (
            f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"User-Agent: {user_agent}\r\nContent-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n"
        ).encode()
        + b
        for b in bodies
    ]
    start = time.monotonic()
    counts = {"accepted": 0, "errors": {}, "from": start + warmup}

    async def main():
        stop_at = start + warmup + duration
        await asyncio.gather(*[_client(port, requests[c:] + requests[:c], stop_at, counts) for c in range(connections)])

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    return counts["accepted"] / duration, counts["errors"]


WRK_SCRIPT = """
-- rotate pre-generated bodies (one file each); count accepted events per thread
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  bodies = {}
  for i = 0, tonumber(args[2]) - 1 do
    local f = io.open(args[1] .. "/" .. i .. ".json", "rb")
    bodies[#bodies + 1] = f:read("*a")
    f:close()
  end
  idx = math.random(#bodies)
  accepted, bad = 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[3]
  wrk.headers["User-Agent"] = args[4]
end
function request()
  idx = idx % #bodies + 1
  return wrk.format(nil, "/v1/events", nil, bodies[idx])
end
function response(status, headers, body)
  if status == 202 then
    accepted = accepted + tonumber(string.match(body, '"accepted":%s*(%d+)'))
  else
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("accepted"); b = b + t:get("bad") end
  io.write(string.format('{"accepted": %d, "bad": %d, "seconds": %.3f, "p50_ms": %.2f, "p99_ms": %.2f}\\n',
    a, b, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


def wrk_run(
    tmp: Path, port: int, key: str, user_agent: str, bodies: list[bytes], seconds: float, connections: int
) -> tuple[dict, float]:
    """One wrk run; (its summary, the CPU seconds wrk itself used)."""
    body_dir = tmp / "bodies"
    if not body_dir.exists():
        body_dir.mkdir()
        for i, b in enumerate(bodies):
            (body_dir / f"{i}.json").write_bytes(b)
        (tmp / "post.lua").write_text(WRK_SCRIPT)
    proc = subprocess.Popen(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(tmp / "post.lua"),
            f"http://127.0.0.1:{port}",
            "--",
            str(body_dir),
            str(len(bodies)),
            key,
            user_agent,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lifeline.preexec(),
    )  # dies with us
    out = proc.stdout.read().decode()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    line = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not line:
        raise RuntimeError(f"wrk gave no summary:\n{out[-2000:]}")
    return json.loads(line[-1]), usage.ru_utime + usage.ru_stime
