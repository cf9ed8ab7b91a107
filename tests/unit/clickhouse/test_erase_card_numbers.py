"""The erase's own check for card numbers in the email or phone it is given: the CLI erases directly when no
API owns ClickHouse, so the check is in ``erase`` itself, before ClickHouse, Kafka or an error message sees the
value (the API's 422 comes from the same ValueError: tests/integration/test_api_card_fields.py)."""

from __future__ import annotations

import pytest

from clickhouse.erase import erase, run
from livemetrics.settings import Settings

CARDS = ("4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "4111, 1111, 1111, 1111")
# Nothing listens there: an erase that got as far as ClickHouse would fail with another error.
NOWHERE = Settings(clickhouse_dsn="http://default:x@127.0.0.1:9/", kafka_bootstrap="127.0.0.1:9")


@pytest.mark.parametrize("card", CARDS)
def test_a_card_number_as_the_email_or_phone_is_refused_before_anything_is_asked(card, capsys):
    for field, kwargs in (
        ("email", {"email": f"{card}@shop.example"}),
        ("phone", {"phone": card}),
        ("phone", {"email": "ada@example.com", "phone": f"tel. {card}"}),
    ):
        with pytest.raises(ValueError) as refused:
            erase(NOWHERE, **kwargs)
        assert str(refused.value).startswith(f"{field}: looks like it holds a card number"), refused.value
        assert card not in str(refused.value)
        assert run(NOWHERE, kwargs.get("email"), kwargs.get("phone")) == 1
        err = capsys.readouterr().err
        assert "looks like it holds a card number" in err and card not in err, err


def test_a_phone_number_as_stored_gets_past_the_check():
    """E.164 digits pass the issuer table and Luhn now and then; a phone is checked by the phone's rule, so the
    erase goes on to ClickHouse (which is not there: another error)."""
    with pytest.raises(Exception) as failed:
        erase(NOWHERE, phone="+560127629778476")
    assert "card number" not in str(failed.value)
