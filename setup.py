"""The package's one native module; everything else is declared in pyproject.toml.

``optional``: without a C compiler the install still succeeds and the daemon falls back to the
pure-Python packetizer for the replay fast path (slower; it says so at start).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "nvr.playback._wire",
            sources=["nvr/playback/_wire.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=True,
        )
    ]
)
