"""The catalogues: the same words in both languages, a name for every code that needs one, no key used that
is missing, and the browser's language preference read as before."""

from __future__ import annotations

import re
import string
from pathlib import Path

import jinja2
import orjson
import pytest
from jinja2 import nodes

from traceability import i18n
from traceability.config import ROOT
from traceability.domain import events, registry, supply
from traceability.http.pages import console
from traceability.http.pages.language import from_header
from traceability.services import analyzer


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_catalogues_hold_the_same_keys_and_placeholders() -> None:
    zh, en = i18n.words("zh"), i18n.words("en")
    assert zh.text.keys() == en.text.keys()
    assert zh.code_names.keys() == en.code_names.keys()
    for kind in zh.code_names:
        assert zh.code_names[kind].keys() == en.code_names[kind].keys(), kind
    for key in zh.text:
        assert zh.text[key] and en.text[key], key
        assert _placeholders(zh.text[key]) == _placeholders(en.text[key]), key


@pytest.mark.parametrize(
    ("kind", "codes", "every"),
    [
        ("node_type", registry.NODE_TYPES, True),
        ("product_category", registry.PRODUCT_CATEGORIES, True),
        ("document_type", events.DOCUMENT_TYPES, True),
        ("unit", events.UNITS, True),
        ("recall_level", supply.RECALL_LEVELS, True),
        ("anomaly", frozenset(analyzer.KINDS), True),
        # CBV names the steps and dispositions nobody here uses; those read as their codes.
        ("biz_step", events.BIZ_STEPS, False),
        ("disposition", events.DISPOSITIONS, False),
    ],
)
def test_code_sets_stay_in_the_domain_and_their_names_in_the_catalogue(
    kind: str, codes: frozenset[str], every: bool
) -> None:
    named = set(i18n.words("zh").code_names[kind])
    assert named <= codes, f"names for codes {kind} does not have: {named - codes}"
    if every:
        assert named == codes, f"{kind} codes without a name: {codes - named}"
    assert i18n.names(kind, "no such code") is None
    assert i18n.name_fields(kind, "no such code") == {"name": "no such code", "name_en": "no such code"}


def test_names_and_lookups() -> None:
    assert i18n.names("node_type", "wet_market") == ("菜市场", "Wet market")
    assert i18n.name_fields("anomaly", "sold_after_expiry") == {"name": "过期销售", "name_en": "Sold after expiry"}
    en = i18n.words("en")
    assert en("digits", n=12) == "12 of 20 digits" and en.step("other_step") == "other step"
    assert en.other == "zh" and en.other_html_lang == "zh-CN" and i18n.words("zh").other_html_lang == "en"
    assert i18n.say("station_weigh") == (
        "请称重：销售需要重量（如 1.25kg 或 2.5斤） · a sale needs a weight (e.g. 1.25kg or 2.5斤)"
    )
    with pytest.raises(ValueError, match="no catalogue"):
        i18n.words("fr")


def test_every_key_the_templates_and_the_code_use_is_in_the_catalogue() -> None:
    known = set(i18n.words("zh").text)
    used: dict[str, str] = {}
    env = jinja2.Environment(autoescape=True)
    for path in (ROOT / "web" / "templates").rglob("*.html"):
        for call in env.parse(path.read_text()).find_all(nodes.Call):
            callee = call.node
            is_t = isinstance(callee, nodes.Name) and callee.name == "t"
            is_both = isinstance(callee, nodes.Getattr) and callee.attr == "both"
            if (is_t or is_both) and call.args and isinstance(call.args[0], nodes.Const):
                used[call.args[0].value] = str(path.relative_to(ROOT))
    used.update({key: "console.NAV" for _, key in console.NAV + console.ADMIN_NAV})
    # Python: say("key"), a catalogue held as t, w, zh or en called with a key, or called at once: words(...)("key").
    call = re.compile(r"""(?:\bsay|\bt|\bw|\bzh|\ben|\))\(\s*["']([a-z_]+)["']""")
    for tree in ("traceability", "scanners"):
        for path in (ROOT / tree).rglob("*.py"):
            for key in call.findall(path.read_text()):
                used.setdefault(key, str(path.relative_to(ROOT)))
    assert len(used) > 100
    missing = {key: where for key, where in used.items() if key not in known}
    assert not missing, missing


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("en-US,en;q=0.9", "en"),
        ("fr-CH, fr;q=0.9, en-US;q=0.8, en;q=0.7, zh;q=0.5", "en"),
        ("zh-TW,zh;q=0.9,en;q=0.8", "zh"),
        ("zh-Hant-TW", "zh"),
        ("EN-gb", "en"),
        ("en;q=0.4, zh-CN;q=0.6", "zh"),
        ("zh;q=0.5, en;q=0.5", "zh"),  # a tie goes to the one named first
        ("en;q=0.5, zh;q=0.5", "en"),
        ("en;q=nonsense, zh;q=0.1", "zh"),
        ("en;q=0", None),
        ("de, fr;q=0.5, *;q=0.1", None),
        ("", None),
    ],
)
def test_accept_language(header: str, lang: str | None) -> None:
    assert from_header(header) == lang


def test_the_catalogues_ship_with_the_package() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert {"i18n/*.po", "domain/areas_en.json"} <= set(project["tool"]["setuptools"]["package-data"]["traceability"])
    assert sorted(p.name for p in Path(i18n.__file__).parent.glob("*.po")) == [
        f"{lang}.po" for lang in sorted(i18n.LANGS)
    ]


@pytest.mark.parametrize(
    ("code", "zh", "en"),
    [
        ("320302", "江苏省徐州市鼓楼区", "Gulou District, Xuzhou, Jiangsu"),
        ("320382", "江苏省徐州市邳州市", "Pizhou City, Xuzhou, Jiangsu"),
        ("320321", "江苏省徐州市丰县", "Feng County, Xuzhou, Jiangsu"),
        ("450102", "广西壮族自治区南宁市兴宁区", "Xingning District, Nanning, Guangxi"),
        ("610102", "陕西省西安市新城区", "Xincheng District, Xian, Shaanxi"),
        ("999999", None, None),
        ("32030", None, None),
    ],
)
def test_area_names_in_both_languages(code: str, zh: str | None, en: str | None) -> None:
    """A place on an English page reads in English, the smallest first, as addresses write it."""
    assert registry.area_name(code) == zh
    assert registry.area_name_en(code) == en


def test_the_english_place_names_are_those_pypinyin_spells() -> None:
    """The shipped table is what ``python -m traceability.domain.registry`` writes from python-stdnum and pypinyin
    now (the server reads the table: pypinyin would cost it about 56 MB)."""
    shipped = orjson.loads(registry.AREAS_EN.read_bytes())
    assert shipped == registry.english_area_names()
    assert len(shipped) > 3000 and shipped["320302"] == "Gulou District, Xuzhou, Jiangsu"
