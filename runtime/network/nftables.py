"""Running nft scripts in-process through libnftables, the library nft(8) is built on.

Why: ``nft -f -`` as a subprocess costs ~7 ms of fork, exec and start-up per call, and a
container with published ports made three calls (add its chains; list the table and
delete them at the end). libnftables (``libnftables.so.1``, in Debian's ``nftables``
package, which the engine needs anyway) takes the same script text and applies it as
one netlink transaction in well under a millisecond. When the library cannot be loaded,
the ``nft`` binary is used as before. ``run`` is all there is: callers own their tables
and their scripts. Owns no files.
"""

from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass

from runtime.errors import KernelError, MissingFeature

NFT_CTX_OUTPUT_JSON = 1 << 4


@dataclass(frozen=True)
class Result:
    ok: bool
    out: str
    err: str


class _Library:
    def __init__(self) -> None:
        lib = ctypes.CDLL("libnftables.so.1", use_errno=True)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        self.lib = lib

    def run(self, script: str, json: bool) -> Result:
        lib = self.lib
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise KernelError("nft_ctx_new", errno.ENOMEM, "libnftables gave no context")
        try:
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            if json:
                lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
            code = lib.nft_run_cmd_from_buffer(ctx, script.encode())
            out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        finally:
            lib.nft_ctx_free(ctx)
        return Result(code == 0, out, err.strip())


_library: _Library | None = None
_tried = False


def preload() -> None:
    """Load libnftables now (the CLI's warm server does, so no container start pays the
    dlopen and relocation of it and its five libraries, ~700 page faults)."""
    _load()


def _load() -> _Library | None:
    global _library, _tried
    if not _tried:
        _tried = True
        try:
            _library = _Library()
        except (OSError, AttributeError):
            _library = None  # no libnftables.so.1 here: the binary will do
    return _library


def run(script: str, json: bool = False) -> Result:
    """Apply (or, for ``list``, read) an nft script; ``json`` for ``nft -j`` output."""
    library = _load()
    if library is not None:
        return library.run(script, json)
    import shutil
    import subprocess

    binary = shutil.which("nft")
    if binary is None:
        raise MissingFeature(
            "nft",
            errno.ENOENT,
            "networking needs nftables (Debian package 'nftables'); it is not installed",
        )
    # With -f, -j would mean JSON input: a JSON listing is one command given as words.
    args = [binary, "-j", *script.split()] if json else [binary, "-f", "-"]
    done = subprocess.run(
        args,
        input=None if json else script,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return Result(done.returncode == 0, done.stdout, done.stderr.strip())
