"""An erase record matches the API's in-memory alerts whichever Unicode spelling either side has."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from livemetrics.erasure_notice import matches, norm_email, notice

NFC = "josé.müller@example.com"
NFD = unicodedata.normalize("NFD", NFC)


def test_a_decomposed_request_matches_a_composed_alert_and_back():
    for asked, held in ((NFD, NFC), (NFC, NFD), (f" {NFD.upper()} ", NFC)):
        assert matches(notice(asked, None, at_ms=10), {"at": 5, "customer": {"email": held}})
    assert not matches(notice(NFD, None, at_ms=10), {"at": 5, "customer": {"email": "jose.muller@example.com"}})


@given(st.text(min_size=1, max_size=30))
def test_every_normal_form_of_an_address_is_one_spelling(text):
    forms = {norm_email(unicodedata.normalize(f, text)) for f in ("NFC", "NFD")}
    assert len(forms) == 1
