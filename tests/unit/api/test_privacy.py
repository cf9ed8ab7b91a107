from api.privacy import alert_for, mask_alert
from livemetrics.keys import Principal

ALERT = {"kind": "payment_failed", "customer": {"email": "ada@example.com", "phone": "+44 20 7946 0958", "name": "Ada Lovelace"},
         "client": {"ip": "203.0.113.9", "browser": "Chrome"}, "order": {"order_id": "o-1"}}


def test_mask_alert_hides_contact_and_ip_but_keeps_the_case_recognisable():
    m = mask_alert(ALERT)
    assert m["customer"] == {"email": "a***@example.com", "phone": "*** 58", "name": "A. L."}
    assert m["client"] == {"ip": None, "browser": "Chrome"} and m["order"] == {"order_id": "o-1"}
    assert ALERT["customer"]["email"] == "ada@example.com"  # the original is untouched


def test_alert_for_depends_on_the_tokens_permission():
    assert alert_for(Principal("s", "token", "k", can_read_pii=True), ALERT) is ALERT
    assert alert_for(Principal("s", "token", "k", can_read_pii=False), ALERT)["pii_masked"] is True
