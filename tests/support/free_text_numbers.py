"""Free text full of numbers that are no card number: the false-positive corpus of the card check's
separators (docs/ingest.md, Privacy). Error messages, titles and paths hold order numbers, phone numbers,
times, dates, prices, IP addresses, UUIDs and counts, joined by commas, slashes, dots, tabs and new lines:
the characters that group a card number's digits as well (``livemetrics.card_numbers``).

Lists of short numbers with spaced separators (``4821, 0937, ...``) and table rows padded with runs of
spaces or tabs are kinds of their own: the separators that group a card's digits only as a whole run.

``python -m tests.support.free_text_numbers [n]`` prints, for ``n`` random messages of each kind, how many
the check refuses (the figures of docs/ingest.md)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

Rng = random.Random


def _digits(rng: Rng, n: int) -> str:
    return str(rng.randrange(10 ** (n - 1), 10**n))


def _order(rng: Rng) -> str:
    return rng.choice(
        [
            lambda: "#" + _digits(rng, rng.randint(5, 10)),
            lambda: "order " + _digits(rng, rng.randint(6, 12)),
            lambda: f"ORD-{rng.randint(2020, 2030)}-{_digits(rng, rng.randint(4, 8))}",
            lambda: f"{_digits(rng, 3)}-{_digits(rng, 7)}-{_digits(rng, 7)}",  # a marketplace's 3-7-7
            lambda: f"{rng.randint(2020, 2030)}/{_digits(rng, rng.randint(5, 9))}",
            lambda: f"invoice {rng.randint(2020, 2030)}.{rng.randint(1, 12):02d}.{_digits(rng, 5)}",
        ]
    )()


def _phone(rng: Rng) -> str:
    return rng.choice(
        [
            lambda: f"+49 {rng.randint(150, 179)} {_digits(rng, 4)} {_digits(rng, 4)}",
            lambda: f"+1 ({_digits(rng, 3)}) 555-{_digits(rng, 4)}",
            lambda: f"0{rng.randint(150, 179)} {_digits(rng, 8)}",
            lambda: f"0{rng.randint(30, 89)}/{_digits(rng, 7)}",
            lambda: f"0{rng.randint(30, 89)}.{_digits(rng, 3)}.{_digits(rng, 2)}.{_digits(rng, 2)}",
            lambda: f"0{rng.randint(1, 9)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
            lambda: f"{_digits(rng, 3)}.{_digits(rng, 3)}.{_digits(rng, 4)}",  # US, dotted
            lambda: f"1-800-{_digits(rng, 3)}-{_digits(rng, 4)}",
            lambda: f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}",
        ]
    )()


def _time(rng: Rng) -> str:
    t = rng.uniform(1.6e9, 2.0e9)
    return rng.choice(
        [
            lambda: f"{int(t)}",
            lambda: f"{int(t * 1000)}",
            lambda: repr(t),
            lambda: f"{t:.3f}",
            lambda: f"{t:.6f}",
            lambda: (
                f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{_digits(rng, 3)}Z"
            ),
            lambda: (
                f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d},{_digits(rng, 3)}"
            ),
            lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{_digits(rng, 6)}",
            lambda: f"took {rng.uniform(0, 100):.3f} s",
        ]
    )()


def _date(rng: Rng) -> str:
    y, m, d = rng.randint(1990, 2035), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        [
            f"{d:02d}.{m:02d}.{y}",
            f"{m:02d}/{d:02d}/{y}",
            f"{y}-{m:02d}-{d:02d}",
            f"{y}/{m:02d}/{d:02d}",
            f"{d}.{m}.{y % 100:02d}",
            f"{y}.{m:02d}.{d:02d}",
            f"{m}/{y % 100:02d}",  # an expiry date
        ]
    )


def _price(rng: Rng) -> str:
    cents = rng.randrange(1, 10 ** rng.randint(3, 10))
    whole, frac = divmod(cents, 100)
    us, de = f"{whole:,}.{frac:02d}", f"{whole:,}".replace(",", ".") + f",{frac:02d}"
    return rng.choice([us, de, f"{whole}.{frac:02d}", f"EUR {de}", f"${us}", f"{de} €", f"{whole},{frac:02d}"])


def _ip(rng: Rng) -> str:
    v4 = ".".join(str(rng.randint(0, 255)) for _ in range(4))
    return rng.choice(
        [
            v4,
            f"{v4}:{rng.randint(1, 65535)}",
            f"{v4}/{rng.randint(8, 32)}",
            ":".join(f"{rng.getrandbits(16):x}" for _ in range(8)),
            f"2001:db8::{rng.getrandbits(16):x}",
        ]
    )


def _uuid(rng: Rng) -> str:
    u = uuid.UUID(int=rng.getrandbits(128))
    return rng.choice([str(u), str(u).upper(), u.hex])


def _count(rng: Rng) -> str:
    return rng.choice(
        [
            lambda: f"{rng.randint(1, 999)} items",
            lambda: f"retry {rng.randint(1, 9)}/{rng.randint(1, 9)}",
            lambda: f"HTTP {rng.choice([400, 402, 404, 409, 429, 500, 502, 503, 504])}",
            lambda: f"v{rng.randint(0, 20)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}",
            lambda: f"Chrome/{rng.randint(90, 140)}.0.{rng.randint(1000, 9999)}.{rng.randint(0, 300)}",
            lambda: f"code {_digits(rng, rng.randint(2, 6))}",
            lambda: f"{rng.randint(1, 100)}%",
        ]
    )()


def _list(rng: Rng) -> str:
    """Short numbers listed with a spaced separator (what the wide separators also join): years, postcodes,
    PINs, quantities."""
    item = rng.choice(
        [
            lambda: str(rng.randint(1990, 2035)),
            lambda: _digits(rng, 4),
            lambda: f"{rng.randint(0, 9999):04d}",
            lambda: _digits(rng, rng.randint(1, 5)),
        ]
    )
    sep = rng.choice([", ", " / ", " - ", " | ", "; ", " . ", " , ", ",  "])
    return sep.join(item() for _ in range(rng.randint(2, 8)))


def _table(rng: Rng) -> str:
    """A row of columns padded with runs of spaces or tabs, and rows under each other."""
    pad = rng.choice(["    ", "      ", "\t\t", "        ", " \t "])
    rows = []
    for _ in range(rng.randint(1, 3)):
        cols = [
            rng.choice([_digits(rng, 4), str(rng.randint(1, 999)), f"{rng.uniform(0, 9999):.2f}", _digits(rng, 6)])
            for _ in range(rng.randint(3, 6))
        ]
        rows.append(pad.join(cols))
    return "\n".join(rows)


KINDS: dict[str, Callable[[Rng], str]] = {
    "order number": _order,
    "phone": _phone,
    "time": _time,
    "date": _date,
    "price": _price,
    "ip": _ip,
    "uuid": _uuid,
    "count": _count,
    "list": _list,
    "table": _table,
}
# The kinds before the wide separators (spaced punctuation, 4 or more spaces) and mixed ones grouped digits:
# on them the card check refuses exactly what the rule of single spaces, dashes and pluses refused.
NARROW_KINDS = ("order number", "phone", "time", "date", "price", "ip", "uuid", "count")
GLUE = [" ", ", ", "; ", " / ", " | ", "\n", "\r\n", "\t", " - ", ": ", ",", "/", "  ", ". "]
WORDS = ["payment", "declined", "at", "ref", "order", "call", "from", "on", "for", "total", "err", "id", "ip"]


def message(rng: Rng, kind: str | None = None, kinds: tuple[str, ...] = tuple(KINDS)) -> str:
    """An error message of 1-6 numbers of ``kind`` (any of ``kinds`` when None), joined by punctuation, white
    space and words."""
    parts: list[str] = []
    for _ in range(rng.randint(1, 6)):
        if parts:
            parts.append(rng.choice(GLUE))
            if rng.random() < 0.4:
                parts.append(rng.choice(WORDS) + rng.choice([" ", ": ", "="]))
        parts.append(KINDS[kind or rng.choice(kinds)](rng))
    return "".join(parts)


def _details_array(rng: Rng, kind: str) -> list[object]:
    """An array of numbers as a payment provider's details hold them (``DETAILS_ARRAYS``)."""
    n = rng.randint(2, 12)
    if kind == "small numbers":  # counts, attempts, step numbers, [1, 2, 3]
        items: list[object] = [rng.randint(0, rng.choice([9, 99, 999])) for _ in range(n)]
    elif kind == "years":
        items = [rng.randint(1990, 2035) for _ in range(n)]
    elif kind == "amounts":  # minor units as ints, or decimal strings
        items = [
            rng.choice([rng.randint(1, 999_999), f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}"]) for _ in range(n)
        ]
    elif kind == "ids":  # numeric ids of 1-9 digits, ints or strings
        items = [_digits(rng, rng.randint(1, 9)) for _ in range(n)]
        items = [int(i) if rng.random() < 0.5 else i for i in items]
    elif kind == "four-digit codes":  # PINs, postcodes, MCCs, BIN-less codes as strings: `["0412", "5734", ...]`
        items = [f"{rng.randint(0, 9999):04d}" for _ in range(n)]
    else:  # "mixed": any of the above, with text between
        items = []
        for _ in range(rng.randint(1, 3)):
            items += _details_array(rng, rng.choice(DETAILS_ARRAYS[:-1]))
            if rng.random() < 0.5:
                items.append(rng.choice(["ok", "retry", "3ds", "EUR"]))
    return items


# Arrays of numbers in `payment.details` (an array's adjacent items are read as a card's digit groups).
DETAILS_ARRAYS = ("small numbers", "years", "amounts", "ids", "four-digit codes", "mixed")


def details_array_rates(n: int, check: Callable[[list[object]], bool], seed: int = 18) -> dict[str, int]:
    """kind -> how many of ``n`` arrays of that kind (``DETAILS_ARRAYS``) ``check`` refuses."""
    rng = random.Random(seed)
    return {kind: sum(check(_details_array(rng, kind)) for _ in range(n)) for kind in DETAILS_ARRAYS}


def false_positive_rates(n: int, check: Callable[[str], bool], seed: int = 15) -> dict[str, int]:
    """kind (and "mixed") -> how many of ``n`` messages ``check`` refuses."""
    rng = random.Random(seed)
    return {
        kind: sum(check(message(rng, None if kind == "mixed" else kind)) for _ in range(n))
        for kind in [*KINDS, "mixed"]
    }


if __name__ == "__main__":
    import sys

    from livemetrics.card_data import find_card_data
    from livemetrics.card_numbers import card_in_string

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for kind, refused in false_positive_rates(count, card_in_string).items():
        print(f"{kind:14} refused {refused:6} of {count} ({refused / count:.4%})")
    for kind, refused in details_array_rates(count, lambda items: find_card_data(items) is not None).items():
        print(f"array: {kind:16} refused {refused:6} of {count} ({refused / count:.4%})")
