"""What a barcode gun or a keypad sends, classified: every format, every mistake, and arbitrary garbage."""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from stdnum import ean

from traceability.domain import tracecode
from traceability.domain.scans import DrugCodeRule, ScanError, parse_scan, trace_code_of

BASE = "https://trace.example.cn"
CODE = tracecode.make("320300", 1234567)  # 32030000000012345676
GTIN = "06901234567892"
FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies -------------------------------------------------------------------------------------

area_codes = st.from_regex(r"[1-8][0-9]{5}", fullmatch=True)
trace_codes = st.builds(tracecode.make, area_codes, st.integers(1, tracecode.MAX_SERIAL))


@st.composite
def gtin14s(draw: st.DrawFn) -> str:
    body = draw(st.from_regex(r"[0-9]{13}", fullmatch=True))
    return body + ean.calc_check_digit(body)


# GS1 AI encodable character set 82 (GS1 General Specifications 7.11).
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
lots = st.text(alphabet=CSET82, min_size=1, max_size=20)
this_year = dt.date.today().year
# GS1 reads YY within 49 years back and 50 ahead of the current year; stay well inside the window.
gs1_dates = st.dates(dt.date(this_year - 40, 1, 1), dt.date(this_year + 40, 12, 31))
FULL_WIDTH = str.maketrans(string.digits, "０１２３４５６７８９")


def yymmdd(day: dt.date) -> str:
    return f"{day:%y%m%d}"


# --- known answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (CODE, "trace_code"),
        (CODE + "\r\n", "trace_code"),
        ("3203 0000 0000 1234 5676", "trace_code"),
        ("3203-0000-0000-1234-5676", "trace_code"),
        (CODE.translate(FULL_WIDTH), "trace_code"),
        (f"]Q1{CODE}", "trace_code"),
        (f"{BASE}/t/{CODE}", "trace_url"),
        (f"{BASE}/t/{CODE}/", "trace_url"),
        (f"HTTPS://TRACE.EXAMPLE.CN/t/{CODE}", "trace_url"),
        (f"http://elsewhere.example/t/{CODE}?from=wechat", "trace_url"),
        (f"{BASE}/01/{GTIN}/10/{CODE}?17=261231", "digital_link"),
        (f"]Q3{BASE}/01/{GTIN}/10/{CODE}", "digital_link"),
        ("https://id.gs1.org/01/09506000134352/10/ABC123/21/XYZ?17=261231&3103=001250", "digital_link"),
        (f"]C101{GTIN}10ABC\x1d17261231", "gs1"),
        (f"01{GTIN}10ABC<GS>17261231", "gs1"),
        (f"]d201{GTIN}10ABC\\x1d17261231", "gs1"),
        (f"(01){GTIN}(10)ABC(17)261231", "gs1"),
        ("6901234567892", "gs1"),
        ("]E06901234567892", "gs1"),
        ("106141412345678908", "gs1"),
        ("81234567890123456780", "drug_code"),
        ("12.5", "quantity"),
        ("12.5kg", "quantity"),
        ("１２．５ｋｇ", "quantity"),
        ("3 箱", "quantity"),
    ],
)
def test_known_lines(line: str, kind: str) -> None:
    assert parse_scan(line, base_urls=[BASE]).kind == kind


def test_trace_code_fields() -> None:
    scan = parse_scan(f" {tracecode.pretty(CODE)}\r\n")
    assert (scan.kind, scan.trace_code, scan.text) == ("trace_code", CODE, CODE)
    assert scan.drug_code is None


def test_gs1_fields_from_a_gs1_128_scan() -> None:
    line = (
        f"]C100106141412345678908\x1d01{GTIN}11240430\x1d17261200\x1d3103012500"
        "4221567007240501240503\x1d414690123456789210PK240501A\x1d21S-001"
    )
    # A real logistic label pairs 00 with 02, not 01; one line with every AI checks that each is read right.
    scan = parse_scan(line)
    gs1 = scan.gs1
    assert scan.kind == "gs1" and scan.symbology == "]C1" and gs1 is not None
    assert gs1.sscc == "106141412345678908"
    assert gs1.gtin == GTIN
    assert gs1.production_date == dt.date(2024, 4, 30)
    assert gs1.expiry_date == dt.date(2026, 12, 31)  # day 00: the last day of the month
    assert gs1.net_weight_kg == Decimal("12.500")
    assert gs1.country_of_origin == "156"
    assert (gs1.harvest_date, gs1.harvest_date_end) == (dt.date(2024, 5, 1), dt.date(2024, 5, 3))
    assert gs1.gln == "6901234567892"
    assert gs1.batch == "PK240501A"
    assert gs1.serial == "S-001"
    assert gs1.hri.startswith("(00)106141412345678908(01)06901234567892(11)240430")


def test_digital_link_fields() -> None:
    scan = parse_scan(f"{BASE}/01/{GTIN}/10/{CODE}?17=261231&utm=x", base_urls=[BASE])
    assert scan.kind == "digital_link" and scan.gs1 is not None
    assert (scan.gs1.gtin, scan.gs1.batch, scan.gs1.expiry_date) == (GTIN, CODE, dt.date(2026, 12, 31))
    assert scan.trace_code == CODE
    assert scan.url == f"{BASE}/01/{GTIN}/10/{CODE}?17=261231&utm=x"


def test_base_url_with_a_path_prefix() -> None:
    scan = parse_scan(f"https://gov.example.cn/xz/trace/t/{CODE}", base_urls=["https://gov.example.cn/xz/trace/"])
    assert (scan.kind, scan.trace_code) == ("trace_url", CODE)


def test_drug_code_rule_is_configurable() -> None:
    drug = "81234567890123456780"
    assert not tracecode.is_valid(drug)
    scan = parse_scan(drug)
    assert scan.drug_code is not None and scan.drug_code.identity_code == "8123456"
    with pytest.raises(ScanError) as caught:
        parse_scan(drug, drug_rule=DrugCodeRule(prefixes=()))
    assert caught.value.code == "invalid_trace_code"
    six = "61234567890123456789"
    assert not tracecode.is_valid(six)
    assert parse_scan(six, drug_rule=DrugCodeRule(prefixes=("6",))).kind == "drug_code"
    with pytest.raises(ScanError):
        parse_scan(six)


def test_a_valid_trace_code_starting_with_8_also_offers_the_drug_reading() -> None:
    code = tracecode.make("810000", 42)
    scan = parse_scan(code)
    assert scan.kind == "trace_code" and scan.drug_code is not None and scan.drug_code.code == code


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("", "empty"),
        ("\r\n", "empty"),
        ("<GS>", "empty"),
        ("]C1", "empty"),
        ("]", "unknown_symbology"),
        ("]?12", "unknown_symbology"),
        ("3203\x070000", "control_character"),
        (CODE[:-1] + str((int(CODE[-1]) + 1) % 10), "invalid_trace_code"),
        ("9" + CODE[1:], "invalid_trace_code"),
        (CODE[:-1], "wrong_length"),
        (CODE + "1", "wrong_length"),
        ("3203 0000 0000", "wrong_length"),
        (f"{BASE}/t/{CODE[:-1]}0", "invalid_trace_code"),
        (f"{BASE}/t/hello", "invalid_trace_code"),
        (f"{BASE}/01/{GTIN}/10/LOT1", "invalid_trace_code"),
        ("https://example.org/about", "unknown_url"),
        (f"https://example.org/01/{GTIN}/21/S/10/L", "unknown_url"),
        ("https://example.org/01/06901234567893", "check_digit"),
        ("ftp://example.org/t/" + CODE, "bad_url"),
        ("6901234567893", "check_digit"),
        ("106141412345678909", "check_digit"),
        (f"]C101{GTIN}17260231", "bad_date"),
        (f"]C101{GTIN}17261301", "bad_gs1"),
        (f"]C101{GTIN}10A\x1d10B", "bad_gs1"),
        ("]C1ABC", "bad_gs1"),
        ("2.5箱", "bad_quantity"),
        ("0kg", "bad_quantity"),
        ("12.5 furlongs", "unrecognized"),
        ("hello", "unrecognized"),
        ("x" * 5000, "too_long"),
    ],
)
def test_refused_lines_say_why(line: str, code: str) -> None:
    with pytest.raises(ScanError) as caught:
        parse_scan(line, base_urls=[BASE])
    assert caught.value.code == code
    assert caught.value.message and caught.value.message_zh
    assert str(caught.value) == caught.value.message


def test_quantity_grammar() -> None:
    cases = {
        "12": (Decimal(12), None, None),
        "12.5": (Decimal("12.5"), None, None),
        "12。5": (Decimal("12.5"), None, None),
        "12.5KG": (Decimal("12.5"), "kg", Decimal("12.5")),
        "12.5 公斤": (Decimal("12.5"), "kg", Decimal("12.5")),
        "500g": (Decimal(500), "g", Decimal("0.5")),
        "3斤": (Decimal(3), "斤", Decimal("1.5")),
        "2两": (Decimal(2), "两", Decimal("0.10")),
        "1.2吨": (Decimal("1.2"), "t", Decimal(1200)),
        "3 箱": (Decimal(3), "箱", None),
        "10pcs": (Decimal(10), "件", None),
        "㎏": None,
    }
    for line, expected in cases.items():
        if expected is None:
            with pytest.raises(ScanError):
                parse_scan(line)
            continue
        quantity = parse_scan(line).quantity
        assert quantity is not None, line
        assert (quantity.amount, quantity.unit, quantity.kilograms) == expected, line
        assert quantity.is_count == (expected[1] is not None and expected[2] is None)


# --- properties -------------------------------------------------------------------------------------


@FAST
@given(
    code=trace_codes,
    pretty=st.booleans(),
    full_width=st.booleans(),
    prefix=st.sampled_from(["", " ", "]Q1", "]C0"]),
    suffix=st.sampled_from(["", "\r", "\n", "\r\n", " \t"]),
)
def test_trace_code_round_trip(code: str, pretty: bool, full_width: bool, prefix: str, suffix: str) -> None:
    typed = tracecode.pretty(code) if pretty else code
    if full_width:
        typed = typed.translate(FULL_WIDTH)
    scan = parse_scan(prefix + typed + suffix)
    assert (scan.kind, scan.trace_code) == ("trace_code", code)


@FAST
@given(code=trace_codes, host=st.from_regex(r"[a-z]{1,10}\.(cn|com|gov\.cn)", fullmatch=True))
def test_trace_url_round_trip(code: str, host: str) -> None:
    scan = parse_scan(f"https://{host}/t/{code}", base_urls=[BASE])
    assert (scan.kind, scan.trace_code) == ("trace_url", code)


@settings(max_examples=25, deadline=None, database=None)
@given(code=trace_codes)
def test_every_single_digit_error_and_adjacent_transposition_is_refused(code: str) -> None:
    mutants = {code[:i] + d + code[i + 1 :] for i in range(len(code)) for d in string.digits if d != code[i]}
    mutants |= {code[:i] + code[i + 1] + code[i] + code[i + 2 :] for i in range(len(code) - 1)}
    mutants.discard(code)
    for mutant in mutants:
        for rule in (DrugCodeRule(), DrugCodeRule(prefixes=())):
            try:
                scan = parse_scan(mutant, drug_rule=rule)
            except ScanError:
                continue
            # The only other reading allowed is a drug code, and only where the rule says so.
            assert scan.kind == "drug_code" and rule.matches(mutant), (mutant, scan)
        with pytest.raises(ScanError):
            parse_scan(f"{BASE}/t/{mutant}", base_urls=[BASE])


@st.composite
def gs1_messages(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    """A GS1 element string with FNC1 after every variable-length field that is not last."""
    fields: list[tuple[str, str, bool]] = [("01", draw(gtin14s()), False)]  # (ai, value, variable length)
    expected: dict[str, object] = {"gtin": fields[0][1]}
    if draw(st.booleans()):
        lot = draw(st.one_of(lots, trace_codes))
        fields.append(("10", lot, True))
        expected["batch"] = lot
    if draw(st.booleans()):
        serial = draw(lots)
        fields.append(("21", serial, True))
        expected["serial"] = serial
    for ai, key in (("11", "production_date"), ("17", "expiry_date")):
        if draw(st.booleans()):
            day = draw(gs1_dates)
            fields.append((ai, yymmdd(day), False))
            expected[key] = day
    if draw(st.booleans()):
        decimals = draw(st.integers(0, 5))
        raw = draw(st.integers(0, 999_999))
        fields.append((f"310{decimals}", f"{raw:06d}", False))
        expected["net_weight_kg"] = Decimal(raw).scaleb(-decimals)
    if draw(st.booleans()):
        country = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
        fields.append(("422", country, False))
        expected["country_of_origin"] = country
    if draw(st.booleans()):
        day = draw(gs1_dates)
        fields.append(("7007", yymmdd(day), True))
        expected["harvest_date"] = day
    fields = draw(st.permutations(fields))
    values = "".join(value for _, value, _ in fields)
    spellings = ["\x1d"] if any(c in values for c in "<[{\\") else ["\x1d", "<GS>", "\\x1d", "[GS]"]
    gs = draw(st.sampled_from(spellings))
    prefix = draw(st.sampled_from(["]C1", "]d2", "]Q3", "]e0", ""]))
    parts = []
    for index, (ai, value, variable) in enumerate(fields):
        parts.append(ai + value)
        if variable and index < len(fields) - 1:
            parts.append(gs)
        elif draw(st.integers(0, 9)) == 0 and index < len(fields) - 1:
            parts.append(gs)  # a separator after a fixed-length field is allowed too
    return prefix + "".join(parts) + draw(st.sampled_from(["", "\r\n"])), expected


@FAST
@given(message=gs1_messages())
def test_gs1_element_string_round_trip(message: tuple[str, dict[str, object]]) -> None:
    line, expected = message
    scan = parse_scan(line)
    assert scan.kind == "gs1" and scan.gs1 is not None
    for key, value in expected.items():
        assert getattr(scan.gs1, key) == value, (key, line)
    if "batch" in expected and tracecode.is_valid(str(expected["batch"])):
        assert scan.trace_code == expected["batch"]


@FAST
@given(
    gtin=gtin14s(),
    lot=st.one_of(st.none(), lots, trace_codes),
    serial=st.one_of(st.none(), lots),
    expiry=st.one_of(st.none(), gs1_dates),
    host=st.sampled_from(["https://id.gs1.org", "https://example.com/dl", "http://shop.example.cn"]),
)
def test_digital_link_round_trip(
    gtin: str, lot: str | None, serial: str | None, expiry: dt.date | None, host: str
) -> None:
    url = f"{host}/01/{gtin}"
    if lot is not None:
        url += f"/10/{quote(lot, safe='')}"
    if serial is not None:
        url += f"/21/{quote(serial, safe='')}"
    if expiry is not None:
        url += f"?17={yymmdd(expiry)}"
    scan = parse_scan(url, base_urls=[BASE])
    assert scan.kind == "digital_link" and scan.gs1 is not None
    assert (scan.gs1.gtin, scan.gs1.batch, scan.gs1.serial, scan.gs1.expiry_date) == (gtin, lot, serial, expiry)


@FAST
@given(gtin=gtin14s(), code=trace_codes, expiry=st.one_of(st.none(), gs1_dates))
def test_our_digital_link_round_trip(gtin: str, code: str, expiry: dt.date | None) -> None:
    url = f"{BASE}/01/{gtin}/10/{code}" + (f"?17={yymmdd(expiry)}" if expiry else "")
    scan = parse_scan(url, base_urls=[BASE])
    assert (scan.kind, scan.trace_code, scan.url) == ("digital_link", code, url)


@FAST
@given(digits=st.from_regex(r"8[0-9]{19}", fullmatch=True))
def test_twenty_digits_starting_with_8(digits: str) -> None:
    scan = parse_scan(digits)
    assert scan.drug_code is not None and scan.drug_code.identity_code == digits[:7]
    assert scan.kind == ("trace_code" if tracecode.is_valid(digits) else "drug_code")


@FAST
@given(
    whole=st.integers(0, 999_999),
    fraction=st.one_of(st.none(), st.from_regex(r"[0-9]{1,3}", fullmatch=True)),
    space=st.sampled_from(["", " "]),
    unit=st.sampled_from(["", "kg", "KG", "公斤", "千克", "g", "克", "斤", "两", "t", "吨"]),
)
def test_mass_quantity_round_trip(whole: int, fraction: str | None, space: str, unit: str) -> None:
    typed = str(whole) + (f".{fraction}" if fraction else "")
    amount = Decimal(typed)
    assume(amount > 0)
    quantity = parse_scan(typed + (space + unit if unit else "")).quantity
    assert quantity is not None and quantity.amount == amount
    assert (quantity.unit is None) == (unit == "")


# Pieces that steer the parser into each branch, so that random text reaches deep, not only the fallback.
FRAGMENTS = st.sampled_from(
    [
        *"]C1 ]d2 ]Q3 ]E0 ]e0 ]X ] http:// https:// HTTPS:// /t/ /01/ /10/ /21/ /22/ ?17= & % %2F %zz [ ( )".split(),
        *"(01) (10) 01 10 17 21 00 414 422 3103 7007 <GS> \\x1d - . 。 kg 斤 箱 ８".split(),
        *"0 8 999999 000000 @ : ::1 [::1".split(),
        *"example.org trace.example.cn ﷽ ﬀ".split(),
        *[CODE, GTIN, "106141412345678908", "\x1d", "\r\n", " ", "\x00", "\ud800"],
    ]
)
garbage = st.one_of(
    st.text(),
    st.text(st.characters(exclude_categories=())),
    st.text(st.characters(max_codepoint=0x7F)),
    st.lists(FRAGMENTS | st.text(max_size=3), max_size=12).map("".join),
    st.binary().map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=400, deadline=None, database=None)
@given(line=garbage)
def test_garbage_raises_only_scan_error(line: str) -> None:
    try:
        scan = parse_scan(line, base_urls=[BASE, "https://gov.example.cn/xz"])
    except ScanError as exc:
        assert exc.message and exc.message_zh and exc.code
        return
    # Whatever was accepted is internally consistent.
    if scan.kind in ("trace_code", "trace_url"):
        assert scan.trace_code is not None and tracecode.is_valid(scan.trace_code)
    if scan.kind in ("gs1", "digital_link"):
        assert scan.gs1 is not None and scan.gs1.elements
    if scan.kind == "drug_code":
        assert scan.drug_code is not None
    if scan.kind == "quantity":
        assert scan.quantity is not None and scan.quantity.amount > 0


def test_non_string_input_is_a_scan_error() -> None:
    with pytest.raises(ScanError):
        parse_scan(b"32030000000012345676")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "line",
    [
        CODE,
        tracecode.pretty(CODE),
        f"{BASE}/t/{CODE}",
        f"http://elsewhere.example/t/{CODE}",
        f"{BASE}/01/06901234567892/10/{CODE}?17=261231",
        f"(01)06901234567892(10){CODE}",
    ],
)
def test_the_vendor_page_finds_the_trace_code_in_every_form_a_label_carries(line: str) -> None:
    assert trace_code_of(line, base_urls=[BASE]) == CODE


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("06901234567892", "not_a_trace_code"),  # a product barcode without our batch
        ("12.5kg", "not_a_trace_code"),  # a weight typed into the code field
        (tracecode.make("810000", 42)[:-1] + "0", "not_a_trace_code"),  # a drug code
        (CODE[:-1] + str((int(CODE[-1]) + 1) % 10), "invalid_trace_code"),
        ("", "empty"),
    ],
)
def test_the_vendor_page_says_why_a_scan_is_not_a_trace_code(line: str, code: str) -> None:
    with pytest.raises(ScanError) as caught:
        trace_code_of(line)
    assert caught.value.code == code and caught.value.message_zh
