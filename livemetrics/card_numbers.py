"""What a card number is, on decoded text and numbers: the exact rules that ``livemetrics.card_data`` walks
events with (docs/ingest.md, "Privacy" says the same in prose).

A card number is 13-19 digits that start with a real issuer prefix (IIN) at a length that issuer uses and
pass Luhn. In text it must stand alone:

- digits may be grouped by single spaces, dashes or pluses (``4111 1111 1111 1111``, ``4111-1111-1111-1111``,
  and ``4111+1111+1111+1111``, a form's spaces in a URL's query string); a window of several groups is a
  candidate only when every group in it has 1-6 digits (as cards are printed: 4-4-4-4, 4-6-5, 4-4-4-4-3),
  a single group when it has 13-19 digits;
- or by what else people type between a card's groups (``SEPARATOR``): a dot, a slash, a comma, or a run of
  1-3 ASCII white space characters (two spaces, a tab, a new line, CRLF): ``4111.1111.1111.1111``,
  ``4111/1111/1111/1111``, a tab between groups. A window with one of those counts only in a printed layout (fours and a last
  group of 1-4, or 4-6-5, 4-6-4) with the same separator throughout, so that IP addresses, dates, prices,
  versions, lists and a phone number followed by a date are not read as one (``tests.support.free_text_numbers``);
- or by a *wide* separator: a dash, plus, dot, slash or comma with white space around it (``4111, 1111, ...``,
  ``4111 / 1111 / ...``), or 4 or more white space characters (columns); and separators may be mixed
  (``4111-1111 1111.1111``). Such a window counts only in a printed layout and only when it is its whole
  run (the digit groups joined by any separator): a table row's other numbers join it into a longer run, as
  do a phone number and a date after it; or when one wide separator goes on throughout it and on both sides,
  each side the run's end or a group that is not of four digits, and, if groups come before it, that
  separator has punctuation: a card with its expiry or code joined on (``4111, 1111, 1111, 1111, 12, 28``)
  or after other numbers in a list (``12, 4111, 1111, 1111, 1111``; a list of four-digit numbers goes on in
  fours, ``4111    1111    1111    1111    2026`` is none, and after other columns of white space alone,
  a table row's, none); or when it starts the run, has no wide separator but mixed ones, and a group that
  is not of four digits follows (``4111-1111 1111.1111, 12/28``);
- in an array (``card_item_runs``), adjacent items of 1-6 digits (any decimal digits in a string) are read as groups joined by ``, ``, and so
  are an object's adjacent values, in the order its keys are written;
- the window does not touch an ASCII letter, digit or ``_`` on either side, nor a ``+`` on its left
  (a phone number; nor does a window start after a plus with white space before it inside a run), nor a
  ``.`` after a digit on its left (the decimals of a number: a window never starts after a dot between digits). So a digit run inside a longer token (hex ids, UUIDs with or without
  dashes, base64, ``sim-`` ids) is never a card number, and "card 4111 1111 1111 1111 declined" is one
  (as is ``4111111111111111.00``, but not ``0.4111111111111111``).
- the same rules hold on the text's *plain* spelling (``card_spellings.plain_digits``): any Unicode decimal digit read as
  its ASCII digit (fullwidth ``４１１１``, as Japanese and Chinese input methods type them; Arabic-Indic
  ``٤١١١``...), any other Unicode space as a space (no-break ``4111\u00a01111...``), a Unicode dash as a
  dash, a fullwidth dot, comma or slash as its ASCII one, and URL escapes of those (``4111%201111%201111%201111``, ``%EF%BC%94``) as what they encode, as
  well as escapes of ASCII characters that are no word character and of every character outside ASCII
  (``cc%3D4111...``, ``%E2%80%8B4111...``: boundaries, as they are unescaped).

A number (a JSON number, or a string that is a whole number spelling such as ``"4.111111111111111e15"``
or ``"+4111111111111111"``) is a card number when the integer part of its exact value is one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from itertools import accumulate

from livemetrics.card_encodings import decoded_texts, might_be_encoded_digits
from livemetrics.card_spellings import PLAIN, plain_digits

_13_19, _14_19, _16_19 = range(13, 20), range(14, 20), range(16, 20)
# (issuer, first prefix, last prefix, lengths): the IIN ranges of the card networks, current and past
# (Wikipedia, "Payment card number"). Generous on purpose: a number outside every range is no card.
ISSUERS = (
    ("Visa", "4", "4", (13, 16, 19)),
    ("Mastercard", "51", "55", (16,)),
    ("Mastercard", "2221", "2720", (16,)),
    ("American Express", "34", "34", (15,)),
    ("American Express", "37", "37", (15,)),
    ("Discover", "6011", "6011", _16_19),
    ("Discover", "622126", "622925", _16_19),
    ("Discover", "644", "649", _16_19),
    ("Discover", "65", "65", _16_19),
    ("JCB", "3528", "3589", _16_19),
    ("Diners Club", "300", "305", _14_19),
    ("Diners Club", "3095", "3095", _14_19),
    ("Diners Club", "36", "36", _14_19),
    ("Diners Club", "38", "39", _14_19),
    ("Diners Club enRoute", "2014", "2014", (15,)),
    ("Diners Club enRoute", "2149", "2149", (15,)),
    ("UnionPay", "62", "62", _16_19),
    ("UnionPay", "81", "81", _16_19),
    ("Maestro", "50", "50", _13_19),
    ("Maestro", "56", "69", _13_19),
    ("Mir", "2200", "2204", _16_19),
    ("BORICA", "2205", "2205", (16,)),
    ("RuPay", "353", "353", (16,)),
    ("RuPay", "356", "356", (16,)),
    ("RuPay", "82", "82", (16,)),
    ("China T-Union", "31", "31", (19,)),
    ("InterPayment", "636", "636", _16_19),
    ("UATP", "1", "1", (15,)),
    ("GPN", "1946", "1946", (16, 18, 19)),
    ("UzCard", "8600", "8600", (16,)),
    ("Humo", "9860", "9860", (16,)),
    ("Napas", "9704", "9704", (16, 19)),
    ("Troy", "9792", "9792", (16,)),
)
_BY_LENGTH = {n: tuple((lo, hi, len(lo)) for _, lo, hi, lengths in ISSUERS if n in lengths) for n in range(13, 20)}
_PREFIX_SIZES = sorted({len(lo) for _, lo, _, _ in ISSUERS})


def _lengths_by_prefix() -> dict[int, dict[str, tuple[int, ...]]]:
    """Prefix size -> every issuer prefix of that size (ranges spelt out) -> the card lengths it has."""
    out: dict[int, dict[str, set[int]]] = {k: {} for k in _PREFIX_SIZES}
    for _, lo, hi, lengths in ISSUERS:
        for p in range(int(lo), int(hi) + 1):
            out[len(lo)].setdefault(str(p).zfill(len(lo)), set()).update(n for n in lengths if 13 <= n <= 19)
    return {k: {p: tuple(sorted(ns)) for p, ns in d.items()} for k, d in out.items()}


_LENGTHS = _lengths_by_prefix()
_DOUBLED = str.maketrans("0123456789", "0246813579")  # a Luhn-doubled digit's digit sum


def luhn_ok(digits: str) -> bool:
    """The Luhn check, in C-level steps: the digits from the right, every second one doubled."""
    kept, doubled = digits[-1::-2], digits[-2::-2].translate(_DOUBLED)
    return (sum(kept.encode()) + sum(doubled.encode()) - 48 * len(digits)) % 10 == 0


_VALUE = bytes(b - 48 if 48 <= b <= 57 else 0 for b in range(256))  # an ASCII digit's byte -> its value
_DOUBLED_VALUE = bytes((2 * v if v < 5 else 2 * v - 9) if v < 10 else 0 for v in range(256))  # value -> doubled
_LUHN_SUMS_PAST = 64  # digits in a run from which its windows' Luhn sums come from prefix sums
_LUHN_SLICES = 16  # windows of a run checked one by one before its prefix sums are made
_CHUNK = 64  # groups of a run prepared at a time (``_card_in_run``)
_REACH = 20  # what a window from a group reads past it: at most 19 groups (of a digit each), and the next one


def luhn_of_windows(digits: str) -> Callable[[int, int], bool]:
    """``luhn_ok(digits[a:e])`` for any window, in constant time each after one linear pass (prefix sums of the
    digits and of their doubled digit sums, by position parity): a run of thousands of one-digit groups has a
    window to check at nearly every group."""
    values = digits.encode().translate(_VALUE)
    doubled = values.translate(_DOUBLED_VALUE)
    plain = (list(accumulate(values[0::2], initial=0)), list(accumulate(values[1::2], initial=0)))
    twice = (list(accumulate(doubled[0::2], initial=0)), list(accumulate(doubled[1::2], initial=0)))

    def ok(a: int, e: int) -> bool:
        q = (e - 1) & 1  # the last digit's parity: kept as it is, and every second one before it
        r = 1 - q
        kept, dbl = plain[q], twice[r]
        total = kept[(e - q + 1) >> 1] - kept[(a - q + 1) >> 1] + dbl[(e - r + 1) >> 1] - dbl[(a - r + 1) >> 1]
        return total % 10 == 0

    return ok


def issuer_prefix_ok(digits: str) -> bool:
    """``digits`` (13-19 of them) start with an issuer's prefix, at a length that issuer uses."""
    return len(digits) in card_lengths(digits, 0)


def _lengths_slow(digits: str, at: int) -> tuple[int, ...]:
    found: tuple[int, ...] = ()
    for k in _PREFIX_SIZES:
        hit = _LENGTHS[k].get(digits[at : at + k])
        if hit:
            found = hit if not found else tuple(sorted({*found, *hit}))
    return found


# Every 4-digit start -> the lengths its prefixes of 1-4 digits allow: one dict lookup a group in
# ``_card_in_run`` (a hostile run has thousands of groups). Only the 6-digit prefixes (622126-622925) need more.
_BY_FOUR = {f"{p:04d}": _lengths_slow(f"{p:04d}", 0) for p in range(10_000)}
_SIX_AFTER = frozenset(p[:4] for p in _LENGTHS[6])
assert max(_PREFIX_SIZES) == 6 and set(_PREFIX_SIZES) <= {1, 2, 3, 4, 6}, "update _BY_FOUR for new prefix sizes"


def card_lengths(digits: str, at: int) -> tuple[int, ...]:
    """The card lengths (13-19) an issuer's prefix at ``digits[at:]`` allows; () when none starts there
    (fewer than 4 digits left: no card fits)."""
    four = digits[at : at + 4]
    found = _BY_FOUR.get(four, ())
    if four in _SIX_AFTER:
        hit = _LENGTHS[6].get(digits[at : at + 6])
        if hit:
            found = tuple(sorted({*found, *hit}))
    return found


def is_card_number(digits: str) -> bool:
    """Exactly the digits of a card number: 13-19 of them, an issuer's prefix and length, Luhn."""
    return 13 <= len(digits) <= 19 and issuer_prefix_ok(digits) and luhn_ok(digits)


# Digit groups joined by separators: a single space, dash or plus (any grouping of 1-6 digit groups), or
# one of the other separators people type between a card's groups: a dot, slash or comma, or a run of 1-3
# ASCII white space characters (two spaces, a tab, a new line, CRLF); a window with one of those counts
# only in a printed card layout with the same separator throughout (``_layout_ok``). Or a *wide* one: a
# dash, plus, dot, slash or comma with white space around it (``4111 - 1111``, ``4111, 1111``), or 4 or
# more white space characters (columns); a window with one of those, or with separators mixed
# (``4111-1111 1111.1111``), counts only in a printed layout and only as a whole run (``_card_in_run``).
_WHITE = r"[ \t\n\r\x0b\x0c]"
SEPARATOR = r"(?:%s*[\-+./,]%s*|%s+)" % (_WHITE, _WHITE, _WHITE)
_RUN = re.compile(r"[0-9]+(?:%s[0-9]+)*" % SEPARATOR)
_GROUPS = re.compile(r"([0-9]+)")  # a run split at its groups: "", group, separator, group, ..., group, ""


def _split_run(run: str) -> tuple[list[str], list[str]]:
    """A run's digit groups and the separators between them (each the whole text between two groups: a run
    has one ``SEPARATOR`` there), in one pass of a simple pattern (a 32 KiB run: ~2 ms less than a split and a
    findall by ``SEPARATOR``)."""
    parts = _GROUPS.split(run)
    return parts[1::2], parts[2:-1:2]


_LOOSE = frozenset(" -+")  # the separators that group digits in any layout
_NARROW = frozenset((".", "/", ","))  # with 1-3 white space characters: in a printed layout, one throughout
_WORD = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_TS_BEFORE = ('"ts":', '"ts": ')  # what precedes the top-level epoch-ms `ts` in raw JSON (see card_data)


def is_wide(sep: str) -> bool:
    """A separator that groups a card's digits only when the window is its whole run: punctuation with white
    space beside it, or 4 or more white space characters."""
    return not (sep in _LOOSE or sep in _NARROW or (len(sep) <= 3 and sep.isspace()))


def _left_ok(text: str, s: int, skip_ts: bool) -> bool:
    if s == 0:
        return True
    ch = text[s - 1]
    if ch in _WORD or ch == "+" or (ch == "." and s >= 2 and "0" <= text[s - 2] <= "9"):
        return False
    return not (skip_ts and text.endswith(_TS_BEFORE, 0, s))


def card_in_text(text: str, skip_ts: bool = False, read: set[str] | None = None) -> bool:
    """``text`` holds a card number standing alone (module docstring), as it is spelt or in its plain
    spelling. ``skip_ts``: for raw JSON, a run right after `"ts":` or `"ts": ` does not start a window
    there (the top-level epoch-ms `ts`). ``read``: where to put the digit groups, joined by commas, of each
    run found to hold no card whose windows take in whatever ``card_in_groups`` of the same groups would
    (``reads_as_items``): no card in those groups as an array's items either."""
    if _card_in_spelling(text, skip_ts, read):
        return True
    if text.isascii() and "%" not in text and "&" not in text:
        return False
    plain = plain_digits(text)
    return plain != text and _card_in_spelling(plain, skip_ts, read)


def _card_in_spelling(text: str, skip_ts: bool, read: set[str] | None = None) -> bool:
    for m in _RUN.finditer(text):
        s, e = m.span()
        if e - s < 13:
            continue
        right_ok = e == len(text) or text[e] not in _WORD
        left_ok = _left_ok(text, s, skip_ts)
        run = m.group()
        groups, seps = _split_run(run)
        if _card_in_run(groups, seps, left_ok, right_ok):
            return True
        if read is not None and left_ok and right_ok and reads_as_items(seps):
            read.add(",".join(groups))
    return False


def reads_as_items(seps: list[str]) -> bool:
    """A run of groups joined by ``seps`` (at both ends a window may start or end) that holds no card number
    holds none as an array's items either (``card_in_groups``: joined by the wide ``_ITEM_SEPARATOR``, a
    window counts only in a printed layout, and only as the whole run, or with it on both sides and beside
    groups of other than four digits): ``seps`` are one separator throughout, after which a window may start
    (no dot), and no white space alone of the wide kind (a table's columns: a window between other numbers
    never counts there). Any other one of them takes in every window the items' separator does: a single
    space, dash or plus any window, a narrow one any in a printed layout, wide punctuation the same ones."""
    if not seps:
        return False
    sep = seps[0]
    return seps.count(sep) == len(seps) and _opens(sep) and not (sep.isspace() and is_wide(sep))


def _opens(sep: str) -> bool:
    """A window may start right after ``sep`` inside a run: not after a dot (the decimals of a number), nor
    after a plus with white space before it (`` +49 ...``: a phone number, as at a run's start)."""
    return sep != "." and not (sep[-1] == "+" and len(sep) > 1 and sep[-2] in " \t\n\r\x0b\x0c")


def blank_card_numbers(text: str, mark: str) -> str:
    """``text`` with every run holding a card number (``card_in_text``'s rules) replaced by ``mark``; when
    its plain spelling still holds one (other digits, escapes), that spelling with every such run replaced.
    For text that is kept but whose card numbers must not be (the sink's dead letters)."""
    out = _blank_runs(text, mark)
    if card_in_text(out):  # a card only in its plain spelling: fullwidth digits, escaped separators...
        out = _blank_runs(plain_digits(out), mark)
    return out


def _blank_runs(text: str, mark: str) -> str:
    def blank(m: re.Match[str]) -> str:
        s, e = m.span()
        if e - s < 13:
            return m.group()
        right_ok = e == len(text) or text[e] not in _WORD
        run = m.group()
        return mark if _card_in_run(*_split_run(run), _left_ok(text, s, False), right_ok) else run

    return _RUN.sub(blank, text)


def _layout_ok(sizes: list[int]) -> bool:
    """Group sizes as card numbers are printed: fours and a last group of 1-4 (4-4-4-4, 4-4-4-4-3, 4-4-4-1),
    or Amex's 4-6-5 and Diners' 4-6-4."""
    if len(sizes) == 3 and sizes[0] == 4 and sizes[1] == 6:
        return sizes[2] in (4, 5)
    return len(sizes) >= 2 and 1 <= sizes[-1] <= 4 and all(k == 4 for k in sizes[:-1])


def _card_in_run(groups: list[str], seps: list[str], left_ok: bool, right_ok: bool) -> bool:
    """A window of ``groups`` (joined by ``seps``; module docstring) is a card number. A window starts at
    the first group only when ``left_ok``, never at a group after a dot (the decimals of a number), and may
    end at the last group only when ``right_ok``; several groups only when each has 1-6 digits. A window
    whose separators are all single spaces, dashes or pluses counts in any layout; one with another
    separator only in a printed card layout (``_layout_ok``), and then either with the same narrow
    separator throughout, anywhere in the run (a phone's groups of four and a dotted date after them are
    no card), or as the whole run (wide or mixed separators: a table's other columns would join it into a
    longer run), or with one wide separator throughout and on both sides, each side the run's end or a group
    of other than four digits (an expiry or a code after the card; other numbers of a list before it, when
    the separator has punctuation), or from the run's start with mixed separators, none wide, on to a
    group of other than four digits.

    Linear in the run: from each group's first digit, only the lengths an issuer's prefix there allows
    are tried, each only when it ends at a group's end (a dict of the ends), and Luhn runs in C-level steps.
    A run of thousands of one-digit groups ("1 2 3 ...", anyone can send one) costs about a microsecond a
    group instead of tens (tests/unit/test_card_numbers_linear.py checks it against the plain double loop).
    What a window needs of the groups is prepared ``_CHUNK`` groups at a time, ahead of the windows starting
    there: a card near the start of a long run ends the work there (a hostile string of cards, each found
    by the raw check, the walk and the redaction alike, cost each of them the whole run before)."""
    n = len(groups)
    digits = "".join(groups)
    sizes = [len(g) for g in groups]
    if n > _LAYOUT_PAST and max(sizes) < 256:
        kind = _one_separator(seps)
        if kind is not None:
            return _card_in_layout_run(digits, sizes, kind, _opens(seps[0]), left_ok, right_ok)
    end_of: dict[int, int] = {}  # digits before a group's end -> that group
    last_big = [-1] * n  # the last group at or before k with more than 6 digits
    strict = [0] * n  # separators before group k that are no single space, dash or plus
    wide = [0] * n  # separators before group k that are wide (``is_wide``)
    same_from = [0] * n  # the first group from which every separator up to group k's is the same
    kinds: dict[str, tuple[int, int, bool]] = {}  # a separator -> strict, wide, opens: few distinct ones a run
    opens = [left_ok] * n  # a window may start at group k
    last = n - 1 if right_ok else n - 2  # the last group a window may end at
    # windows' Luhn sums from prefix sums in a long run, once ``_LUHN_SLICES`` windows were checked one by one
    # (a card in the first ones is found without a pass over the whole run)
    luhn: Callable[[int, int], bool] | None = None
    at = total = ready = checked = 0  # ``ready``: the groups prepared so far
    for lo in range(0, n, _CHUNK):
        # prepared up to _REACH groups past this chunk's windows' starts: all that a window from them reads
        until = min(n, lo + _CHUNK + _REACH)
        for k in range(ready, until):
            total += sizes[k]
            end_of[total] = k
            last_big[k] = k if sizes[k] > 6 else last_big[k - 1] if k else -1
            if k:
                sep = seps[k - 1]
                kind = kinds.get(sep)
                if kind is None:
                    kind = kinds[sep] = (sep not in _LOOSE, is_wide(sep), _opens(sep))
                strict[k] = strict[k - 1] + kind[0]
                wide[k] = wide[k - 1] + kind[1]
                opens[k] = kind[2]
                same_from[k] = same_from[k - 1] if k > 1 and sep == seps[k - 2] else k - 1
        ready = until
        for i in range(lo, min(n, lo + _CHUNK)):
            if opens[i]:
                four = digits[at : at + 4]
                lengths = _BY_FOUR.get(four, ()) if four not in _SIX_AFTER else card_lengths(digits, at)
                for length in lengths:
                    j = end_of.get(at + length)
                    # one group of any size, or several of 1-6 digits each
                    if j is None or not (i <= j <= last and (j == i or last_big[j] < i)):
                        continue
                    if strict[j] != strict[i]:
                        narrow = wide[j] == wide[i] and same_from[j] <= i
                        whole = i == 0 and j == n - 1
                        if not (narrow or whole):  # the other two only then (a run of thousands of groups)
                            # one separator throughout and on both sides, each side the run's end or a group
                            # that is no four digits (a list of four-digit numbers goes on in fours): a card with
                            # its expiry or code after it (``4111, 1111, 1111, 1111, 12, 28``) and, when that
                            # separator has punctuation, after other numbers (``12, 4111, 1111, 1111, 1111``;
                            # columns of white space alone are a table's, whose other numbers a card is not
                            # told from)
                            on = j + 1 if j < n - 1 else j
                            listed = (
                                same_from[on] <= max(i - 1, 0)
                                and (i == 0 or (sizes[i - 1] != 4 and not seps[i - 1].isspace()))
                                and (j == n - 1 or sizes[j + 1] != 4)
                            )
                            # from the run's start, no wide separator in it but mixed ones, on to a group that
                            # is no four digits: ``4111-1111 1111.1111, 12/28``
                            mixed = i == 0 and j < n - 1 and wide[j] == wide[i] and sizes[j + 1] != 4
                            if not (listed or mixed):
                                continue
                        if not _layout_ok(sizes[i : j + 1]):
                            continue
                    if luhn is None:
                        checked += 1
                        if checked > _LUHN_SLICES and len(digits) > _LUHN_SUMS_PAST:
                            luhn = luhn_of_windows(digits)  # many windows: their sums from one pass
                    if luhn(at, at + length) if luhn is not None else luhn_ok(digits[at : at + length]):
                        return True
            at += sizes[i]
    return False


# A run joined by one separator throughout that groups digits only in a printed layout: a narrow one (``4111,1111,
# ...``, ``1/2/3``, a tab) or a wide one with punctuation (``4111, 1111, ...``; an array's items and an object's
# values, ``card_in_groups``). Its windows of several groups count only in a printed layout (``_card_in_run``:
# "narrow"), and with a wide one only with groups of other than four digits, or the run's ends, on both sides
# ("listed"; "whole" is one of them, "mixed" never holds). Those windows are found at C speed on the group
# sizes as bytes (a hostile run of thousands of groups has few or none: `1,1,1,...` cost ~1.5 us a group), and
# only they, and the groups of 13-19 digits, are read in Python.
_LAYOUT_PAST = 8  # groups in a run from which that way is taken
_LAYOUTS = (  # the printed layouts of 13-19 digits, and how many groups each has
    (rb"\x04\x04\x04[\x01-\x04]", 4),  # 4-4-4-1..4: 13-16 digits
    (rb"\x04\x04\x04\x04[\x01-\x03]", 5),  # 4-4-4-4-1..3: 17-19 digits
    (rb"\x04\x06[\x04\x05]", 3),  # 4-6-4, 4-6-5
)
_WINDOWS = {  # "narrow": anywhere; "listed": not beside a group of four digits
    "narrow": tuple((re.compile(rb"(?=%s)" % p), k) for p, k in _LAYOUTS),
    "listed": tuple((re.compile(rb"(?<!\x04)(?=%s(?!\x04))" % p), k) for p, k in _LAYOUTS),
}
_ONE_GROUP = re.compile(rb"[\x0d-\x13]")  # a group of 13-19 digits: a window of its own


def _one_separator(seps: list[str]) -> str | None:
    """ "narrow" or "listed" for ``seps`` that are one separator throughout, narrow or wide with punctuation."""
    if not seps:
        return None
    sep = seps[0]
    if sep in _LOOSE or seps.count(sep) != len(seps):
        return None
    if not is_wide(sep):
        return "narrow"
    return None if sep.isspace() else "listed"


def _card_in_layout_run(digits: str, sizes: list[int], kind: str, opens: bool, left_ok: bool, right_ok: bool) -> bool:
    """``_card_in_run`` for a run joined by one separator throughout of ``kind`` (``_one_separator``; ``opens``: a
    window may start after it) with no group of more than 255 digits."""
    n = len(sizes)
    sig = bytes(sizes)
    at = list(accumulate(sizes, initial=0))  # digits before group k
    last = n - 1 if right_ok else n - 2
    starts = [(m.start(), k) for p, k in _WINDOWS[kind] for m in p.finditer(sig)]
    starts += [(m.start(), 1) for m in _ONE_GROUP.finditer(sig)]
    for i, k in starts:
        j = i + k - 1
        if j > last or not (opens if i else left_ok):
            continue
        a, e = at[i], at[j + 1]
        if e - a in card_lengths(digits, a) and luhn_ok(digits[a:e]):
            return True
    return False


# Array items: an array has an order, so adjacent items that may be a card's digit groups (``item_digits``)
# are read as a run joined by a wide separator: a card number counts in a printed layout, as a whole run,
# with its expiry or code after it or after other numbers (``_card_in_run``), as `4111, 1111, 1111, 1111`
# does in text.
_ITEM_SEPARATOR = ", "


def item_digits(v: object) -> str | None:
    """The digits of an array item that may be one of a card's digit groups: a string of 1-6 decimal digits
    (any Unicode ones read as ASCII's, as in text: fullwidth `"４１１１"`) or an int of 1-6 digits (a group's
    leading zeros are lost in an int: `[4111, 111, ...]` is no printed layout), else None. Anything else (a
    longer number, a float, a negative one, text) ends a run."""
    if v.__class__ is str:  # not a subclass: card_data.RawFloat is a float's text
        if not 1 <= len(v) <= 6:
            return None
        if not v.isascii():
            v = v.translate(PLAIN)  # str.isdecimal is Unicode's Nd, every one of which PLAIN reads as ASCII
        return v if v.isascii() and v.isdigit() else None
    if v.__class__ is int:  # not a bool
        return str(v) if 0 <= v <= 999_999 else None
    return None


def card_in_groups(groups: list[str]) -> bool:
    """Adjacent array items' digits (``item_digits``), in order, hold a card number: a run joined by a wide
    separator (``_ITEM_SEPARATOR``)."""
    return len(groups) >= 2 and _card_in_run(groups, [_ITEM_SEPARATOR] * (len(groups) - 1), True, True)


def card_item_runs(items: Sequence[object]) -> Iterator[tuple[int, int]]:
    """The first and last index of each run of adjacent items (``item_digits``) that holds a card number.
    Linear in the array: each run is read once. An object's values are read so too, in the order of its
    keys in the JSON text (``card_data``: `{"cc1": "4111", "cc2": "1111", ...}`)."""
    groups: list[str] = []
    for i in range(len(items) + 1):
        digits = item_digits(items[i]) if i < len(items) else None
        if digits is not None:
            groups.append(digits)
            continue
        if sum(map(len, groups)) >= 13 and card_in_groups(groups):
            yield i - len(groups), i - 1
        groups = []


NUMBER_SPELLING = re.compile(r"[+\-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+\-]?[0-9]+)?")
_E12, _E19 = Decimal(10) ** 12, Decimal(10) ** 19


def card_in_number(text: str) -> bool:
    """The integer part of the exact value of a number spelt ``text`` (JSON or ``repr``) is a card number."""
    try:
        value = Decimal(text).copy_abs()  # exact: no context, no rounding
        return value.is_finite() and _E12 <= value < _E19 and is_card_number(str(int(value)))
    except ArithmeticError:  # not a number, or an exponent beyond what Decimal compares
        return False


def card_in_string(s: str) -> bool:
    """A string value or object key: a card number standing alone in it, or it spells one as a number, or a
    Base64 or hex token in it encodes text that holds one (``card_encodings``)."""
    return (
        (len(s) >= 13 and card_in_text(s))
        or (NUMBER_SPELLING.fullmatch(s) is not None and card_in_number(s))
        or card_in_encoded(s)
    )


def card_in_phone(s: str) -> bool:
    """``card_in_string`` for a phone number (an event's ``customer.phone``, the erase's phone), which has at
    most 15 digits (E.164): one run of at most 15 digits, with or without a ``+`` before it, is a phone
    number (``+4915123456789`` and ``4915123456789`` are how phone numbers are stored, and they passed the
    issuer table and Luhn for about 1 % of them), and a whole number spelling counts only past 15 digits.
    Digits grouped as a card is printed (``3782 822463 10005``) count as anywhere else."""
    digits = s[1:] if s.startswith("+") else s
    if digits.isascii() and digits.isdigit() and len(digits) <= 15:
        return card_in_encoded(s)
    return (
        (len(s) >= 13 and card_in_text(s))
        or (NUMBER_SPELLING.fullmatch(s) is not None and sum(c.isdigit() for c in s) > 15 and card_in_number(s))
        or card_in_encoded(s)
    )


def card_in_encoded(text: str) -> bool:
    """A Base64, Base32 or hex token of ``text`` that may encode digits decodes to text holding a card number,
    or to text whose own such token does (two levels: Base64 of hex, hex of Base64; each level decodes only
    a token with the shape of encoded digits, so the second costs only where that shape is found again)."""
    if not might_be_encoded_digits(text):
        return False
    for decoded in decoded_texts(text):
        if card_in_text(decoded):
            return True
        if might_be_encoded_digits(decoded) and any(card_in_text(d) for d in decoded_texts(decoded)):
            return True
    return False
