"""Hostile bodies for POST /v1/orders, on SQLite and on PostgreSQL.

Every case must be refused with a 4xx whose body is ``{"errors": [{code, field, message, hint}]}``,
with no stack trace in it, and must leave the orders table exactly as it was.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from ordex.api.app import create_app
from ordex.bootstrap import build, prepare
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.domain.errors import Code
from ordex.store.uow import reading
from tests.conftest import Api, auth, fresh_postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

# A limit order with every field set, each to a value ordex accepts (the control test proves it).
BASE: dict[str, Any] = {
    "symbol": "AAPL", "side": "buy", "quantity": "10", "type": "limit", "limit_price": "189.00",
    "stop_loss": "180.00", "take_profit": "195.00", "time_in_force": "day",
    "client_order_id": "abc-1",
}
MARKET: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "quantity": "10", "type": "market"}
DECIMAL_FIELDS = ("quantity", "limit_price", "stop_loss", "take_profit")
TEXT_FIELDS = ("symbol", "side", "type", "time_in_force", "client_order_id")
# The code a bad value in each field is refused with.
FIELD_CODE = {"symbol": "invalid_text", "side": "invalid_choice", "type": "invalid_choice",
              "time_in_force": "invalid_choice", "client_order_id": "invalid_text",
              **dict.fromkeys(DECIMAL_FIELDS, "invalid_number")}
KNOWN_CODES = {c.value for c in Code}
STACK_TRACE = re.compile(r'Traceback|File "|line \d+, in |\.py", line|sqlalchemy\.|asyncpg\.')
UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs"}  # control, format (bidi overrides), lone surrogates
_names = itertools.count()


@dataclass(frozen=True)
class Hostile:
    """A request body ordex must refuse, and how: the status and one code it must carry."""

    id: str
    body: bytes
    status: int | None  # None: any 4xx
    code: str | None = None
    field: str | None = None
    content_type: str | None = "application/json"


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()


def with_raw(base: dict[str, Any], field: str, raw: str) -> bytes:
    """``base`` as JSON with ``field`` set to ``raw``, JSON text written as is (NaN, 1e400...)."""
    rest = json.dumps({k: v for k, v in base.items() if k != field})
    return f'{rest[:-1]}, "{field}": {raw}}}'.encode()


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


# --- the body as a whole --------------------------------------------------------------------------

ORDER_TEXT = json.dumps(MARKET)
WHOLE_BODY = [
    Hostile("plain-text", b"buy 10 AAPL at market please", 400, "invalid_json"),
    Hostile("empty", b"", 400, "invalid_json"),
    Hostile("whitespace-only", b" \r\n\t ", 400, "invalid_json"),
    Hostile("invalid-utf8", ORDER_TEXT.replace("AAPL", "AA\xffPL").encode("latin-1"),
            400, "invalid_json"),
    Hostile("utf8-encoded-surrogate", ORDER_TEXT.encode().replace(b"AAPL", b"AA\xed\xa0\x80PL"),
            400, "invalid_json"),
    Hostile("overlong-utf8", ORDER_TEXT.encode().replace(b'"buy"', b'"b\xc1\xb5y"'),
            400, "invalid_json"),
    Hostile("utf16", ORDER_TEXT.encode("utf-16"), 400, "invalid_json"),
    Hostile("truncated", ORDER_TEXT[:-7].encode(), 400, "invalid_json"),
    Hostile("trailing-garbage", (ORDER_TEXT + " x").encode(), 400, "invalid_json"),
    Hostile("two-orders-back-to-back", (ORDER_TEXT + ORDER_TEXT).encode(), 400, "invalid_json"),
    Hostile("single-quotes", ORDER_TEXT.replace('"', "'").encode(), 400, "invalid_json"),
    Hostile("trailing-comma", (ORDER_TEXT[:-1] + ",}").encode(), 400, "invalid_json"),
    Hostile("comment", ("/* hi */" + ORDER_TEXT).encode(), 400, "invalid_json"),
    Hostile("array-of-one-order", dumps([MARKET]), 400, "invalid_body"),
    Hostile("empty-array", b"[]", 400, "invalid_body"),
    Hostile("json-string", b'"AAPL"', 400, "invalid_body"),
    Hostile("json-number", b"10", 400, "invalid_body"),
    Hostile("json-null", b"null", 400, "invalid_body"),
    Hostile("json-true", b"true", 400, "invalid_body"),
    Hostile("json-false", b"false", 400, "invalid_body"),
    Hostile("json-NaN", b"NaN", 422, "invalid_number"),
    Hostile("empty-object", b"{}", 422, "missing_field"),
    Hostile("nested-arrays-10000", nested(10_000).encode(), 400, "invalid_json"),
    Hostile("nested-objects-10000", ('{"a":' * 10_000 + "1" + "}" * 10_000).encode(),
            400, "invalid_json"),
    Hostile("nested-10000-in-symbol", with_raw(MARKET, "symbol", nested(10_000, '"AAPL"')),
            400, "invalid_json"),
    Hostile("body-1mb", dumps({**MARKET, "client_order_id": "x" * 1_000_000}),
            413, "body_too_large"),
    Hostile("symbol-100kb", dumps({**MARKET, "symbol": "A" * 100_000}), 413, "body_too_large"),
    Hostile("body-1mb-of-spaces", b" " * 1_000_000 + ORDER_TEXT.encode(), 413, "body_too_large"),
]

# Duplicate keys: JSON parsers disagree on which value wins, so the order would be ambiguous.
DUPLICATE_KEYS = [
    Hostile("duplicate-side", ORDER_TEXT.replace('"side": "buy"', '"side": "sell", "side": "buy"')
            .encode(), 400, "invalid_body", "side"),
    Hostile("duplicate-quantity-same-value",
            ORDER_TEXT.replace('"quantity": "10"', '"quantity": "10", "quantity": "10"').encode(),
            400, "invalid_body", "quantity"),
    Hostile("duplicate-quantity-number-and-string",
            ORDER_TEXT.replace('"quantity": "10"', '"quantity": 1, "quantity": "10"').encode(),
            400, "invalid_body", "quantity"),
]

# --- content type and bodies meant for something else ---------------------------------------------

WRONG_CONTENT_TYPE = [
    Hostile("form-urlencoded", b"symbol=AAPL&side=buy&quantity=10&type=market", 415,
            "unsupported_media_type", content_type="application/x-www-form-urlencoded"),
    Hostile("multipart-form",
            b'--b\r\nContent-Disposition: form-data; name="symbol"\r\n\r\nAAPL\r\n--b--\r\n', 415,
            "unsupported_media_type", content_type="multipart/form-data; boundary=b"),
    Hostile("xml", b"<order><symbol>AAPL</symbol><side>buy</side></order>", 415,
            "unsupported_media_type", content_type="application/xml"),
    Hostile("json-declared-latin1", ORDER_TEXT.replace("AAPL", "AAPL\xe9").encode("latin-1"),
            400, "invalid_json", content_type="application/json; charset=latin-1"),
    # A well-formed order under another media type is refused, not guessed at.
    Hostile("valid-order-as-text-plain", ORDER_TEXT.encode(), 415, "unsupported_media_type",
            content_type="text/plain"),
    Hostile("valid-order-as-form-urlencoded", ORDER_TEXT.encode(), 415,
            "unsupported_media_type", content_type="application/x-www-form-urlencoded"),
]
OTHER_ENDPOINT = [
    Hostile("new-account-request", dumps({"name": "mallory", "role": "admin", "cash": "1e9"}),
            422, "unknown_field", "name"),
    Hostile("limits-update", dumps({"max_open_orders": 100000, "cash": "1e12"}),
            422, "unknown_field", "max_open_orders"),
    Hostile("order-as-returned-by-get", dumps({
        **MARKET, "id": "01a21585-757c-7d07-ae90-3d753abd5f74", "status": "filled",
        "filled_quantity": "10", "trader_id": "01a21585-757c-7d07-ae90-3d753abd5f75"}),
        422, "unknown_field", "status"),
    Hostile("batch-of-orders", dumps({"orders": [MARKET, MARKET]}), 422, "unknown_field",
            "orders"),
]

# --- fields: missing, unknown, wrong type ---------------------------------------------------------

MISSING = [
    Hostile(f"missing-{name}", dumps({k: v for k, v in MARKET.items() if k != name}),
            422, "missing_field", name)
    for name in ("symbol", "side", "quantity", "type")
] + [
    Hostile(f"null-{name}", dumps({**MARKET, name: None}), 422, "missing_field", name)
    for name in ("symbol", "side", "quantity", "type")
]

UNKNOWN = [
    Hostile("unknown-price", dumps({**MARKET, "price": "189.50"}), 422, "unknown_field", "price"),
    Hostile("unknown-typo-symbl", dumps({**MARKET, "symbl": "AAPL"}), 422, "unknown_field",
            "symbl"),
    Hostile("unknown-trader-id", dumps({**MARKET, "trader_id": "01a21585-757c-7d07"}),
            422, "unknown_field", "trader_id"),
    Hostile("unknown-status", dumps({**MARKET, "status": "filled"}), 422, "unknown_field",
            "status"),
    Hostile("unknown-__proto__", dumps({**MARKET, "__proto__": {"admin": True}}),
            422, "unknown_field", "__proto__"),
    Hostile("unknown-empty-key", dumps({**MARKET, "": 1}), 422, "unknown_field"),
    Hostile("unknown-key-nul", dumps({**MARKET, "sym\x00bol": "AAPL"}), 422, "unknown_field"),
    Hostile("unknown-key-crlf", dumps({**MARKET, "x\r\nSet-Cookie: a=b": 1}), 422,
            "unknown_field"),
    Hostile("unknown-key-emoji", dumps({**MARKET, "🚀": 1}), 422, "unknown_field"),
    Hostile("unknown-key-lone-surrogate", dumps({**MARKET, "\ud800": 1}), 422, "unknown_field"),
    Hostile("unknown-key-rtl-override", dumps({**MARKET, "\u202elobmys": 1}), 422,
            "unknown_field"),
    Hostile("unknown-key-60kb", dumps({**MARKET, "k" * 60_000: 1}), 422, "unknown_field"),
]

WRONG_TYPE_VALUES: dict[str, Any] = {"object": {"value": "10"}, "array": ["10"], "true": True,
                                     "false": False, "empty-object": {}, "empty-array": []}
WRONG_TYPES = [
    Hostile(f"{name}-as-{kind}", dumps({**BASE, name: value}), 422,
            "invalid_value" if name == "symbol" else FIELD_CODE[name], name)
    for name in (*TEXT_FIELDS, *DECIMAL_FIELDS) for kind, value in WRONG_TYPE_VALUES.items()
] + [
    Hostile(f"{name}-as-number", dumps({**BASE, name: 1}), 422,
            "invalid_value" if name == "symbol" else FIELD_CODE[name], name)
    for name in TEXT_FIELDS
]

# --- numbers --------------------------------------------------------------------------------------

FIFTY_DIGITS = "12345678901234567890123456789012345678901234567890"
# (raw JSON, code): refused by the parser, whichever decimal field they are in.
BAD_NUMBERS: dict[str, tuple[str, str]] = {
    "NaN-literal": ("NaN", "invalid_number"),
    "Infinity-literal": ("Infinity", "invalid_number"),
    "-Infinity-literal": ("-Infinity", "invalid_number"),
    "NaN-string": ('"NaN"', "invalid_number"),
    "nan-string": ('"nan"', "invalid_number"),
    "sNaN-string": ('"sNaN"', "invalid_number"),
    "Infinity-string": ('"Infinity"', "invalid_number"),
    "-Infinity-string": ('"-Infinity"', "invalid_number"),
    "inf-string": ('"inf"', "invalid_number"),
    "1e400": ("1e400", "out_of_range"),
    "-1e400": ("-1e400", "out_of_range"),
    "1e400-string": ('"1e400"', "out_of_range"),
    "-1e400-string": ('"-1e400"', "out_of_range"),
    "1e1000000": ("1e1000000", "out_of_range"),
    "-1e999999999-string": ('"-1e999999999"', "out_of_range"),
    "50-digit-integer": (FIFTY_DIGITS, "out_of_range"),
    "50-digit-integer-string": (f'"{FIFTY_DIGITS}"', "out_of_range"),
    "50-digit-fraction": (f"0.{FIFTY_DIGITS}", "too_precise"),
    "50-digit-fraction-string": (f'"0.{FIFTY_DIGITS}"', "too_precise"),
    # Past 28 significant digits a careless parse rounds this to exactly 10.
    "10-plus-1e-48": ("10." + "0" * 47 + "1", "too_precise"),
    "10-plus-1e-48-string": ('"10.' + "0" * 47 + '1"', "too_precise"),
    "1e-50": ("1e-50", "too_precise"),
    "1e-50-string": ('"1e-50"', "too_precise"),
    "1e-1000000": ("1e-1000000", "too_precise"),
    "9-decimal-places": ('"10.000000001"', "too_precise"),
    "word": ('"ten"', "invalid_number"),
    "empty-string": ('""', "invalid_number"),
    "blank-string": ('"   "', "invalid_number"),
    "thousands-comma": ('"1,000"', "invalid_number"),
    "decimal-comma": ('"189,50"', "invalid_number"),
    "currency-sign": ('"$189.50"', "invalid_number"),
    "hex": ('"0x10"', "invalid_number"),
    "with-unit": ('"10 shares"', "invalid_number"),
    "65-characters": ('"' + "0" * 63 + '10"', "invalid_number"),
    "fullwidth-digits": ('"\uff11\uff10"', "invalid_number"),
    "arabic-indic-digits": ('"\u0661\u0660"', "invalid_number"),
    "leading-zero-literal": ("010", "invalid_json"),
    "plus-sign-literal": ("+10", "invalid_json"),
    "hex-literal": ("0x10", "invalid_json"),
}


def _number_case(name: str, kind: str, raw: str, code: str) -> Hostile:
    # Text that is not JSON, and the NaN/Infinity literals, are refused before fields are read.
    whole_body = code == "invalid_json" or (code == "invalid_number" and raw[0] != '"')
    return Hostile(f"{name}-{kind}", with_raw(BASE, name, raw),
                   400 if code == "invalid_json" else 422, code, None if whole_body else name)


NUMBERS = [_number_case(name, kind, raw, code)
           for name in DECIMAL_FIELDS for kind, (raw, code) in BAD_NUMBERS.items()]
# Zero and negative zero parse fine but are not positive: the order rules refuse them.
ZEROS = [
    Hostile(f"{name}-{kind}", with_raw(BASE, name, raw), 422,
            "quantity_not_positive" if name == "quantity" else "price_not_positive", name)
    for name in DECIMAL_FIELDS
    for kind, raw in {"-0": "-0", "-0-string": '"-0"', "-0.0": "-0.0", "0": "0",
                      "0e-50": "0e-50"}.items()
]

# --- hostile text in every string field -----------------------------------------------------------


def _mid(char: str) -> Any:
    return lambda v: v[:1] + char + v[1:]


HOSTILE_TEXT = {
    "nul-inside": _mid("\x00"),
    "nul-after": lambda v: v + "\x00",
    "escape-sequence": lambda v: "\x1b[31m" + v,
    "escape-after": lambda v: v + "\x1b",
    "crlf-inside": _mid("\r\n"),
    "header-injection": lambda v: v + "\r\nX-Injected: yes",
    "tab-inside": _mid("\t"),
    "vertical-tab-before": lambda v: "\x0b" + v,
    "unit-separator-after": lambda v: v + "\x1f",
    "delete-after": lambda v: v + "\x7f",
    "no-break-space-after": lambda v: v + "\xa0",
    "line-separator-after": lambda v: v + "\u2028",
    "emoji": _mid("🚀"),
    "emoji-only": lambda v: "💸",
    "rtl-override": lambda v: "\u202e" + v[::-1],
    "hebrew": lambda v: v + "\u05d0",
    "arabic": lambda v: "\u0639" + v,
    "combining-acute": _mid("\u0301"),
    "zalgo": lambda v: "".join(c + "\u0336\u0334\u0337" for c in v),
    "zero-width-space": _mid("\u200b"),
    "lone-high-surrogate": lambda v: "\ud800",
    "lone-low-surrogate-inside": _mid("\udfff"),
    "ideographic-space-before": lambda v: "\u3000" + v,
    "fullwidth": lambda v: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in v),
    "60kb": lambda v: v * (60_000 // len(v)),
}
TEXT = [
    Hostile(f"{name}-{kind}", dumps({**BASE, name: change(BASE[name])}), 422, FIELD_CODE[name],
            name)
    for name in (*TEXT_FIELDS, *DECIMAL_FIELDS) for kind, change in HOSTILE_TEXT.items()
]
# Surrounding blanks are trimmed from every field but this one, which must match as sent.
TEXT.append(Hostile("client_order_id-newline-after", dumps({**BASE, "client_order_id": "abc-1\n"}),
                    422, "invalid_text", "client_order_id"))
# Characters that str.upper()/lower() turn into ASCII letters: they must not spell a real value.
LOOKALIKES = [
    Hostile("symbol-dotless-i-spells-INTC", dumps({**MARKET, "symbol": "\u0131ntc"}), 422,
            "invalid_text", "symbol"),
    Hostile("symbol-long-s-spells-MSFT", dumps({**MARKET, "symbol": "m\u017fft"}), 422,
            "invalid_text", "symbol"),
    Hostile("type-kelvin-sign-spells-market", dumps({**MARKET, "type": "mar\u212aet"}), 422,
            "invalid_choice", "type"),
    Hostile("tif-kelvin-sign-spells-fok", dumps({**MARKET, "time_in_force": "fo\u212a"}), 422,
            "invalid_choice", "time_in_force"),
]

CASES = [
    *WHOLE_BODY, *DUPLICATE_KEYS, *WRONG_CONTENT_TYPE, *OTHER_ENDPOINT, *MISSING, *UNKNOWN,
    *WRONG_TYPES, *NUMBERS, *ZEROS, *TEXT, *LOOKALIKES,
]
assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


def params(cases: list[Hostile], *marks: Any) -> list[Any]:
    return [pytest.param(c, id=c.id, marks=marks) for c in cases]


# --- fixtures and checks --------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def api(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """One app per backend for the whole module (there are hundreds of cases).

    Sharing the store is safe: each case counts the orders before and after itself, and each case
    trades as a fresh account, so that the per-trader rate limit never answers for the parser.
    """
    url = None
    if request.param == "postgres":
        url = await fresh_postgres_database(request.getfixturevalue("postgres"))
    settings = Settings(data_dir=tmp_path_factory.mktemp("bad-input") / "data",
                        database_url=url, seed_demo=False)
    services = build(settings)
    await prepare(services)
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ordex.test") as client:
            yield Api(client, services)
    finally:
        await services.close()


async def order_count(api: Api) -> int:
    async with reading(api.services.db) as repo:
        return await repo.count_orders()


async def trader(api: Api) -> dict[str, str]:
    return auth(await api.account(f"hostile-{next(_names)}"))


async def post(api: Api, body: bytes, content_type: str | None,
               headers: dict[str, str]) -> httpx.Response:
    sent = dict(headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    return await api.client.post("/v1/orders", content=body, headers=sent)


def _safe_text(value: str) -> bool:
    return not any(unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in value)


def assert_clean_refusal(r: httpx.Response) -> list[dict[str, Any]]:
    """A 4xx with the documented error shape, safe to show, and without internals."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:2000])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert not STACK_TRACE.search(r.text), r.text[:2000]
    assert len(r.content) < 16_384, "the error echoes too much of the request back"
    body = r.json()
    assert isinstance(body, dict) and list(body) == ["errors"], body
    errors = body["errors"]
    assert isinstance(errors, list) and errors, body
    for error in errors:
        assert isinstance(error, dict) and set(error) == {"code", "field", "message", "hint"}
        assert error["code"] in KNOWN_CODES, error
        assert error["field"] is None or isinstance(error["field"], str), error
        for key in ("message", "hint"):
            assert isinstance(error[key], str) and error[key].strip(), error
        for text in (error["message"], error["hint"], error["field"] or ""):
            assert _safe_text(text), f"unescaped control or format character in {error!r}"
    return errors


# --- tests ----------------------------------------------------------------------------------------


async def test_base_order_is_accepted(api: Api) -> None:
    """The control: the bodies below differ from this accepted one only in what makes them bad."""
    headers = await trader(api)
    for body in (BASE, MARKET):
        before = await order_count(api)
        r = await api.client.post("/v1/orders", json=body, headers=headers)
        assert r.status_code == 201, r.text
        assert await order_count(api) == before + 1


@pytest.mark.parametrize("case", [
    *params(CASES),
])
async def test_hostile_body_is_refused_cleanly(api: Api, case: Hostile) -> None:
    headers = await trader(api)
    before = await order_count(api)
    r = await post(api, case.body, case.content_type, headers)
    errors = assert_clean_refusal(r)
    if case.status is not None:
        assert r.status_code == case.status, r.text[:2000]
    if case.code is not None:
        assert case.code in {e["code"] for e in errors}, r.text[:2000]
    if case.field is not None:
        assert any(e["code"] == case.code and e["field"] == case.field for e in errors), \
            r.text[:2000]
    assert await order_count(api) == before, "an order was written for a refused request"


@pytest.mark.parametrize("content_type", [None, "application/json",
                                          "application/json; charset=utf-8"])
async def test_refusal_does_not_depend_on_content_type_header(
        api: Api, content_type: str | None) -> None:
    headers = await trader(api)
    before = await order_count(api)
    r = await post(api, b'{"symbol": "AAPL", "side": "buy", "quantity": NaN}', content_type,
                   headers)
    assert_clean_refusal(r)
    assert r.status_code == 422
    assert await order_count(api) == before


@pytest.mark.parametrize("field", [*TEXT_FIELDS, *DECIMAL_FIELDS])
async def test_nesting_just_inside_the_parsers_depth_limit_is_refused_cleanly(
        api: Api, field: str) -> None:
    """The deepest value json.loads still parses must not blow the stack when echoed back."""
    headers = await trader(api)
    before = await order_count(api)

    async def too_deep_to_parse(depth: int) -> bool:
        r = await post(api, with_raw(BASE, field, nested(depth)), "application/json", headers)
        errors = assert_clean_refusal(r)
        return r.status_code == 400 and errors[0]["code"] == "invalid_json"

    parses, fails = 1, 10 * sys.getrecursionlimit()
    assert not await too_deep_to_parse(parses)
    assert await too_deep_to_parse(fails)
    while fails - parses > 1:
        middle = (parses + fails) // 2
        if await too_deep_to_parse(middle):
            fails = middle
        else:
            parses = middle
    for depth in range(parses - 20, parses + 3):
        await too_deep_to_parse(depth)
    assert await order_count(api) == before


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/admin/accounts"),
    ("PATCH", "/v1/admin/accounts/01a21585-757c-7d07-ae90-3d753abd5f74"),
])
async def test_undecodable_body_on_a_framework_parsed_endpoint_is_a_documented_422(
        api: Api, method: str, path: str) -> None:
    """FastAPI parses these bodies itself, and answered bytes that are not UTF-8 with an
    undocumented 400 in its own words (found by tests/e2e/test_schemathesis.py)."""
    headers = auth(await api.account(f"admin-{next(_names)}", Role.ADMIN))
    r = await api.client.request(method, path, content=b'{"name": "\xff\xfe"}',
                                 headers={**headers, "Content-Type": "application/json"})
    errors = assert_clean_refusal(r)
    assert r.status_code == 422, r.text
    assert errors[0]["code"] == "invalid_json", r.text


@dataclass(frozen=True)
class Wrong:
    id: str
    body: dict[str, Any]
    code: str
    field: str | None


WELL_FORMED_BUT_WRONG = [
    Wrong("negative-quantity", {**BASE, "quantity": "-10"}, "quantity_not_positive", "quantity"),
    Wrong("negative-quantity-number", {**MARKET, "quantity": -10}, "quantity_not_positive",
          "quantity"),
    Wrong("zero-quantity", {**MARKET, "quantity": 0}, "quantity_not_positive", "quantity"),
    Wrong("fractional-quantity", {**MARKET, "quantity": "1.5"}, "quantity_not_lot_multiple",
          "quantity"),
    Wrong("limit-price-zero", {**BASE, "limit_price": "0"}, "price_not_positive", "limit_price"),
    Wrong("limit-price-negative", {**BASE, "limit_price": -189}, "price_not_positive",
          "limit_price"),
    Wrong("limit-order-without-price", {k: v for k, v in BASE.items() if k != "limit_price"},
          "limit_price_required", "limit_price"),
    Wrong("market-order-with-price", {**MARKET, "limit_price": "189.50"},
          "limit_price_not_allowed", "limit_price"),
    Wrong("limit-price-off-tick", {**BASE, "limit_price": "189.005"}, "price_off_tick",
          "limit_price"),
    Wrong("limit-price-out-of-band", {**BASE, "limit_price": "500"}, "price_out_of_band",
          "limit_price"),
    Wrong("stop-loss-above-buy-price", {**BASE, "stop_loss": "190"}, "stop_loss_wrong_side",
          "stop_loss"),
    Wrong("take-profit-below-buy-price", {**BASE, "take_profit": "188"},
          "take_profit_wrong_side", "take_profit"),
    Wrong("unknown-symbol", {**MARKET, "symbol": "ZZZZ"}, "unknown_symbol", "symbol"),
    Wrong("suspended-symbol", {**MARKET, "symbol": "SIVBQ"}, "symbol_suspended", "symbol"),
    Wrong("delisted-symbol", {**MARKET, "symbol": "BBBYQ"}, "symbol_delisted", "symbol"),
    Wrong("insufficient-funds", {**MARKET, "quantity": "999999"}, "insufficient_funds",
          "quantity"),
    Wrong("sell-without-position", {**MARKET, "side": "sell"}, "insufficient_position",
          "quantity"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in WELL_FORMED_BUT_WRONG])
async def test_well_formed_but_wrong_order_is_422_with_its_code(api: Api, case: Wrong) -> None:
    headers = await trader(api)
    before = await order_count(api)
    r = await api.client.post("/v1/orders", json=case.body, headers=headers)
    errors = assert_clean_refusal(r)
    assert r.status_code == 422, r.text
    assert (case.code, case.field) in {(e["code"], e["field"]) for e in errors}, r.text
    assert await order_count(api) == before, "an order was written for a refused request"
