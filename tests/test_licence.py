"""The licence tells the truth: the project is GPL-3.0-or-later, as its GPL dependency (pymerkle) requires,
and every runtime dependency carries a licence that may be combined with it."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, requires

from traceability.config import ROOT

# Licences whose terms allow distribution as part of a GPL-3.0-or-later work.
COMPATIBLE = re.compile(
    r"GPL|GNU General Public|GNU Lesser|LGPL|Apache|MIT|BSD|PSF|Python Software Foundation|MPL|Mozilla|ISC|"
    r"Unlicense|CC0|Zlib|HPND|MIT-CMU|PostgreSQL"
)


def _licence(name: str) -> str:
    meta = distribution(name).metadata
    classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    text = " ".join(filter(None, [meta.get("License-Expression"), meta.get("License"), *classifiers]))
    if not text.strip():  # some wheels carry only the licence file
        files = [f for f in distribution(name).files or [] if "LICENSE" in f.name.upper()]
        text = " ".join((f.read_text() or "")[:200] for f in files)
    return text


def test_pyproject_declares_the_licence_of_the_licence_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "GPL-3.0-or-later"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text
    assert "GPLv3+" in _licence("pymerkle") or "GPL" in _licence("pymerkle")


def test_every_runtime_dependency_is_compatible() -> None:
    names = [re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0] for r in requires("traceability") or [] if "extra ==" not in r]
    assert "pymerkle" in names
    for name in names:
        try:
            licence = _licence(name)
        except PackageNotFoundError:
            raise AssertionError(f"{name} is a dependency but is not installed") from None
        assert COMPATIBLE.search(licence), f"{name}: licence {licence[:120]!r} is not known to be GPL-compatible"
        assert "AGPL" not in licence or "GPL" in licence, name
