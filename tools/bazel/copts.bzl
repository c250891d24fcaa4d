"""Compiler options shared by every Tongka C++ target (one place, so all targets agree)."""

TONGKA_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-sign-compare",
    # Tongka's config structs are built with designated initializers naming only what differs.
    "-Wno-missing-field-initializers",
    "-Werror=return-type",
]
