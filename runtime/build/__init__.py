"""Building images from Dockerfiles, as Docker's classic builder does.

- ``dockerfile``: parse a Dockerfile; ARG/ENV word expansion
- ``context``: the build context (directory or tar) and ``.dockerignore``
- ``cache``: (parent image, step) → image
- ``builder``: ``build(context, options, out) -> BuildResult``; ``steps`` and ``copying``
  carry out RUN (in a real container) and COPY/ADD.

Owns ``<images>/build-cache/``; everything else a build makes is an ordinary image.
"""

from __future__ import annotations

from runtime.build.builder import BuildOptions, BuildResult, build
from runtime.build.context import Context
from runtime.build.dockerfile import DockerfileError, parse
from runtime.build.steps import StepFailed

__all__ = [
    "BuildOptions",
    "BuildResult",
    "Context",
    "DockerfileError",
    "StepFailed",
    "build",
    "parse",
]
