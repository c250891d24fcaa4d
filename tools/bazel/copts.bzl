"""Compiler options shared by every Tongka C++ target (one place, so all targets agree)."""

TONGKA_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-sign-compare",
    "-Werror=return-type",
]
