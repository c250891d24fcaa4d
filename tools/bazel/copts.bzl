"""Compiler options shared by every Tongka C++ target (one place, so all targets agree).

Warnings are errors in Tongka's own code only: generated protobuf code (tools/bazel/proto.bzl)
builds with the compiler's defaults, and the system libraries' headers are system headers, whose
warnings GCC does not report.
"""

TONGKA_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    "-Wno-sign-compare",
    # Tongka's config structs are built with designated initializers naming only what differs.
    "-Wno-missing-field-initializers",
]
