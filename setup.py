"""Builds the compiled inner loop of the chain audit (traceability/_chainwalk.c) and the walk of the canonical
encoding's value check (traceability/_canonical.c); everything else is in pyproject.toml.

SHA-256 comes from OpenSSL's libcrypto where its headers are installed, and from the module's own
implementation otherwise. Should no compiler be at hand the install goes on without the modules, and the
audit uses its pure-Python walker, the canonical encoding its Python check (same verdicts, slower).
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENSSL = {"define_macros": [("CHAINWALK_OPENSSL", "1")], "libraries": ["crypto"]}


class BuildExt(build_ext):
    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
            return
        except Exception as exc:  # any compiler or linker failure: try without OpenSSL
            print(f"building {ext.name} with OpenSSL failed ({exc}); using its own SHA-256", file=sys.stderr)
        ext.define_macros = []
        ext.libraries = []
        try:
            super().build_extension(ext)
        except Exception as exc:  # the pure-Python walker stands in
            print(f"building {ext.name} failed ({exc}); its Python counterpart stands in", file=sys.stderr)


setup(
    ext_modules=[
        Extension(
            "traceability._chainwalk",
            ["traceability/_chainwalk.c"],
            extra_compile_args=["-O2"],
            **OPENSSL,  # type: ignore[arg-type]
        ),
        Extension("traceability._canonical", ["traceability/_canonical.c"], extra_compile_args=["-O2"]),
    ],
    cmdclass={"build_ext": BuildExt},
)
