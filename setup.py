"""Build of the C extension karak._karak (the package's PEP 517 build, via setuptools)."""
import os
import sys
import sysconfig

from setuptools import Extension, setup

SOURCES = [
    "module.c", "server.c", "conn.c", "request.c", "response.c", "plan.c",
    "json.c", "buf.c", "parse.c", "router.c", "pool.c",
]

extra = ["-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers",
         "-Wno-unused-parameter", "-fvisibility=hidden", "-O2"]
if os.environ.get("KARAK_WERROR", "1") == "1":
    extra.append("-Werror")
if os.environ.get("KARAK_SANITIZE"):
    extra += ["-fsanitize=" + os.environ["KARAK_SANITIZE"], "-fno-omit-frame-pointer", "-g"]

setup(
    ext_modules=[
        Extension(
            "karak._karak",
            sources=[os.path.join("src", "_karak", s) for s in SOURCES],
            include_dirs=[os.path.join("src", "_karak")],
            extra_compile_args=extra,
            define_macros=[("_GNU_SOURCE", "1")],
        )
    ]
)
