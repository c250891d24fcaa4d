"""A repository rule that turns pkg-config entries of system (Debian) libraries into cc_library targets.

Tongka builds offline against the distribution's libraries. For every entry in `libs` the rule runs
`pkg-config --cflags --libs` once, at fetch time, and writes a cc_library named after the entry whose
`defines` carry the -D flags and whose `linkopts` carry the full link line (pkg-config's complete
list matters: gRPC and protobuf need abseil's libraries spelled out).

An entry named in `left_out_when` links nothing under the given config_setting (jemalloc under the
sanitizer configs, whose runtimes bring their own allocator).

Example (WORKSPACE):
    system_libs(name = "system", libs = {"grpcpp": ["grpc++"], "rocksdb": ["rocksdb"]})
    # then: deps = ["@system//:grpcpp"]
"""

def _system_libs_impl(rctx):
    pkg_config = rctx.which("pkg-config")
    if not pkg_config:
        fail("pkg-config is not installed; run tools/setup.sh first")
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, spec in rctx.attr.libs.items():
        modules = [m for m in spec if not m.startswith("-")]
        extra = [m for m in spec if m.startswith("-")]
        result = rctx.execute([pkg_config, "--cflags", "--libs"] + modules)
        if result.return_code != 0:
            fail("pkg-config cannot find %s for @%s//:%s (run tools/setup.sh): %s" %
                 (modules, rctx.name, name, result.stderr))
        defines = []
        linkopts = []
        for flag in result.stdout.strip().split(" "):
            if not flag:
                continue
            if flag.startswith("-D"):
                if flag[2:] not in defines:
                    defines.append(flag[2:])
            elif flag.startswith("-I"):
                # System include dirs are already on the compiler's search path; anything else
                # would need a copy into the repository, which Tongka never needs.
                if flag not in ("-I/usr/include", "-I/usr/include/x86_64-linux-gnu"):
                    fail("@%s//:%s needs include dir %s, which this rule does not support" %
                         (rctx.name, name, flag))
            else:
                linkopts.append(flag)
        linkopts = repr(extra + linkopts)
        if name in rctx.attr.left_out_when:
            linkopts = 'select({"%s": [], "//conditions:default": %s})' % (
                rctx.attr.left_out_when[name],
                linkopts,
            )
        build.append("cc_library(")
        build.append('    name = "%s",' % name)
        build.append("    defines = %s," % repr(defines))
        build.append("    linkopts = %s," % linkopts)
        build.append(")")
        build.append("")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", "\n".join(build))

system_libs = repository_rule(
    implementation = _system_libs_impl,
    attrs = {
        "libs": attr.string_list_dict(
            doc = "target name -> pkg-config modules, plus literal linker flags starting with '-'",
        ),
        "left_out_when": attr.string_dict(
            doc = "target name -> config_setting label under which the target links nothing",
        ),
    },
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)
