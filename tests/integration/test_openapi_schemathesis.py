"""The OpenAPI documents are the contract: schemathesis (``st run --checks all``, every phase) against the
gateway and the API, served by uvicorn over the real broker and ClickHouse, with a valid browser key and
read token, finds nothing; and on the gateway's `POST /v1/events` with a server key, each request signed
over its body as sent by the hooks' requests auth (``ServerKeySignature``), as the server SDK signs. Before,
no run could sign, so the signed route was never tested past its 401 (schemathesis said only "Authentication
failed: 1 operation returned only 401/403 responses" and passed); the run now has to get events accepted.

What each run covers: schema-valid requests are accepted and schema-invalid ones rejected (the event
contract, derived from ``EventIn``: livemetrics/contract_schema.py), every status code, content type,
header and body is documented, no 5xx, requests without or with a wrong key get 401, unsupported
methods 405. The hooks in ``tests/support/openapi_hooks.py`` put the two caller- and clock-relative
rules (`ts` near now, `seller_id` the key's) into the schema-valid requests. The one setting changed
from schemathesis' defaults: 413 counts as a rejection of schema-invalid data (a batch over 500 events
is answered 413, as docs/ingest.md says).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from api.main import create_api
from livemetrics import keys, metrics
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support.servers import ThreadServer, wait_until
from tests.support.stack import module_settings, new_seller

ROOT = Path(__file__).resolve().parents[2]
SELLER = "shop-openapi"
MAX_EXAMPLES = 50
LONG_EXAMPLES = 300  # `make test-long`: ~15 min on 2 shared cores for the three runs
# schemathesis' default list plus 413 (Content Too Large): a batch over the limit is refused with it.
_CONFIG = f"""
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

[parameters]
"path.seller_id" = "{SELLER}"
"""


@pytest.fixture(scope="module")
def services(kafka, clickhouse_dsn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openapi")
    s = module_settings(kafka, clickhouse_dsn, tmp)
    browser, token = new_seller(s, SELLER)
    server_key, rec = keys.new_server_key(SELLER, s.key_encryption_key.get_secret_value())
    keys.publish(s, rec)
    registry = KeyRegistry(s).start()
    servers = []
    try:
        for key in (browser, token, server_key):
            wait_until(lambda k=key: registry.record(k.split("_")[2]) is not None, 15, what="keys loaded")
        servers.append(ThreadServer(create_gateway(s, registry)).start())
        servers.append(ThreadServer(create_api(s, registry)).start())
        yield {
            "gateway": (servers[0].url, browser),
            "gateway-signed": (servers[0].url, server_key),
            "api": (servers[1].url, token),
            "admin": (servers[1].url, s.admin_token.get_secret_value()),
            "tmp": tmp,
        }
    finally:
        for server in servers:
            server.stop()
        registry.stop()


def run_schemathesis(url: str, credential: str, tmp: Path, examples: int = MAX_EXAMPLES) -> subprocess.CompletedProcess:
    config = tmp / "schemathesis.toml"
    config.write_text(_CONFIG)
    env = {
        "PATH": str(Path(sys.executable).parent),
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp),
        "SCHEMATHESIS_HOOKS": "tests.support.openapi_hooks",
        "LIVEMETRICS_TEST_OPENAPI_SELLER": SELLER,
    }
    if credential.startswith("lm_sk_"):  # signed by the hooks' requests auth, over each body as sent
        env["LIVEMETRICS_TEST_OPENAPI_SERVER_KEY"] = credential
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(examples),
        *(() if credential.startswith("lm_sk_") else ("--header", f"Authorization: Bearer {credential}")),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    if credential.startswith("lm_sk_"):  # the one operation that takes a server key's signature
        cmd[-1:-1] = ["--include-path", "/v1/events"]
    if credential.startswith("lm_pk_"):  # a browser key works only from its allowed origin
        cmd[-1:-1] = ["--header", f"Origin: {f.SHOP_ORIGIN}"]
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=540 * examples // MAX_EXAMPLES)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("service", ["gateway", "gateway-signed", "api"])
def test_schemathesis_finds_nothing(services, service):
    url, credential = services[service]
    accepted = metrics.EVENTS_ACCEPTED.labels("all")._value.get()
    done = run_schemathesis(url, credential, services["tmp"])
    out = done.stdout + done.stderr
    if service == "gateway-signed":  # the signed requests passed the 401: events accepted (202)
        assert metrics.EVENTS_ACCEPTED.labels("all")._value.get() > accepted, out[-3000:]
    assert done.returncode == 0, f"schemathesis found failures on the {service}:\n{out[-12000:]}"
    # The run really tested every operation (a schema that failed to load exits non-zero above).
    assert "Tested:" in out and "generated" in out, out[-3000:]


@pytest.mark.long
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("service", ["gateway", "gateway-signed", "api", "admin"])
def test_schemathesis_finds_nothing_in_a_longer_run(services, service):
    """Six times the examples, and the API with the admin token too (every seller's routes and the erase):
    such a run found the erase's schema calling `{"email": null, "phone": ""}` valid."""
    url, credential = services[service]
    done = run_schemathesis(url, credential, services["tmp"], LONG_EXAMPLES)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"schemathesis found failures on the {service}:\n{out[-12000:]}"
    assert "Tested:" in out and "generated" in out, out[-3000:]
