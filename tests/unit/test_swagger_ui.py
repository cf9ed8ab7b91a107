"""``/docs`` of the API and the gateway load Swagger UI from one pinned release with Subresource Integrity
(livemetrics/swagger_ui.py), and the hashes are those of that release's npm package."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_api
from livemetrics import swagger_ui
from livemetrics.settings import Settings
from producers.gateway.app import create_gateway
from tests.support.tracker_js import tool


@pytest.mark.parametrize("make", [create_api, create_gateway], ids=["api", "gateway"])
def test_docs_loads_only_the_pinned_files_each_with_its_hash(make) -> None:
    html = TestClient(make(Settings(dev_mode=True))).get("/docs").text
    external = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="(https?:[^"]+)"[^>]*>', html)
    assert sorted(external) == sorted([swagger_ui.JS_URL, swagger_ui.CSS_URL])
    assert "@5/" not in html  # not FastAPI's floating major version
    for url, sri in ((swagger_ui.JS_URL, swagger_ui.JS_SRI), (swagger_ui.CSS_URL, swagger_ui.CSS_SRI)):
        tag = next(t for t in re.findall(r"<(?:script|link)\b[^>]*>", html) if url in t)
        assert f'integrity="{sri}"' in tag and 'crossorigin="anonymous"' in tag, tag


def test_the_hashes_are_those_of_the_release_on_npm(tmp_path: Path) -> None:
    npm = tool("npm")
    r = subprocess.run(
        [npm, "pack", f"swagger-ui-dist@{swagger_ui.VERSION}", "--pack-destination", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, f"npm pack failed:\n{r.stderr[-2000:]}"
    (tarball,) = tmp_path.glob("swagger-ui-dist-*.tgz")
    with tarfile.open(tarball) as tar:
        for name, sri in (("swagger-ui-bundle.js", swagger_ui.JS_SRI), ("swagger-ui.css", swagger_ui.CSS_SRI)):
            member = tar.extractfile(f"package/{name}")
            assert member is not None
            digest = base64.b64encode(hashlib.sha384(member.read()).digest()).decode()
            assert sri == f"sha384-{digest}", name
