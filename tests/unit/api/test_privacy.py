import re

from hypothesis import given
from hypothesis import strategies as st

from api.privacy import alert_for, mask_alert, mask_text
from livemetrics.keys import Principal

ALERT = {
    "kind": "payment_failed",
    "customer": {"email": "ada@example.com", "phone": "+44 20 7946 0958", "name": "Ada Lovelace"},
    "client": {"ip": "203.0.113.9", "browser": "Chrome"},
    "order": {"order_id": "o-1"},
}


def test_mask_alert_hides_contact_and_ip_but_keeps_the_case_recognisable():
    m = mask_alert(ALERT)
    assert m["customer"] == {"email": "a***@example.com", "phone": "*** 58", "name": "A. L."}
    assert m["client"] == {"ip": None, "browser": "Chrome"} and m["order"] == {"order_id": "o-1"}
    assert ALERT["customer"]["email"] == "ada@example.com"  # the original is untouched


def test_alert_for_depends_on_the_tokens_permission():
    assert alert_for(Principal("s", "token", "k", can_read_pii=True), ALERT) is ALERT
    assert alert_for(Principal("s", "token", "k", can_read_pii=False), ALERT)["pii_masked"] is True


FREE_TEXT = {
    **ALERT,
    "payment": {
        "method": "card",
        "error_code": "declined",
        "error_message": "declined for ada@example.com, call +44 20 7946 0958",
        "details": {
            "billing_name": "Ada Lovelace",
            "decline": "do_not_honor",
            "attempts": [{"contact": "ada@example.com"}],
            "retries": 2,
        },
    },
    "client": {
        "ip": "203.0.113.9",
        "browser": "Chrome",
        "os": "macOS",
        "user_agent": "Mozilla/5.0 (Macintosh; rare-build 7.1.44)",
    },
    "note": "called Ada on 0044 20 7946 0958, mailed ada@example.com",
}


def test_masking_covers_free_text_details_note_and_user_agent():
    m = mask_alert(FREE_TEXT)
    assert m["payment"]["error_message"] == "declined for a***@example.com, call *** 58"
    assert m["payment"]["details"] == {
        "billing_name": "***",
        "decline": "do_not_honor",
        "attempts": [{"contact": "a***@example.com"}],
        "retries": 2,
    }
    assert m["client"] == {"ip": None, "browser": "Chrome", "os": "macOS", "user_agent": None}
    assert m["note"] == "called Ada on *** 58, mailed a***@example.com"
    assert FREE_TEXT["note"].startswith("called Ada on 0044")  # the original is untouched


WORDS = st.text(st.characters(whitelist_categories=("L", "Zs"), blacklist_characters="@"), max_size=20)


@given(
    local=st.from_regex(r"[a-z0-9._%+-]{1,20}", fullmatch=True),
    domain=st.from_regex(r"[a-z0-9-]{1,15}\.[a-z]{2,6}", fullmatch=True),
    phone=st.from_regex(r"\+?[0-9]{2,4}([ .-]?[0-9]{2,4}){2,4}", fullmatch=True),
    before=WORDS,
    after=WORDS,
)
def test_no_email_or_phone_survives_masked_free_text(local, domain, phone, before, after):
    email = f"{local}@{domain}"
    assert email not in mask_text(f"{before} {email}, {after}")
    # of a phone number only its last two digits are left
    assert re.sub(r"\D", "", mask_text(f"{before} {phone} {after}")) == re.sub(r"\D", "", phone)[-2:]
