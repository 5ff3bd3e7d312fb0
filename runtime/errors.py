"""The engine's one exception hierarchy.

::

    MoorageError                      every error the engine raises on purpose
    ├── NotFound                      no such container, image, network, volume
    ├── Conflict                      the request clashes with current state
    │   ├── NameInUse                 a name already belongs to another object
    │   ├── InvalidState              a transition the lifecycle table forbids
    │   └── InUse                     an object other objects still depend on
    ├── InvalidSpec                   bad user input, caught before any syscall
    ├── KernelError                   a syscall failed; keeps errno and the operation
    │   └── MissingFeature            the kernel lacks what the request needs
    ├── ExecFailed                    the container's command could not be started
    │                                  (126 not executable, 127 not found)
    └── CleanupError                  teardown failed after an earlier failure;
                                       keeps both

``exit_code`` is what the CLI exits with (Docker's convention: 125 for engine errors,
126 and 127 for a command that cannot be run); the dashboard maps the classes to HTTP
statuses in one table of its own.
"""

from __future__ import annotations

import errno as errno_module


class MoorageError(Exception):
    """Base class; ``str(err)`` is a one-line sentence fit for a user."""

    exit_code = 125


class NotFound(MoorageError):
    pass


class Conflict(MoorageError):
    pass


class NameInUse(Conflict):
    pass


class InvalidState(Conflict):
    pass


class InUse(Conflict):
    pass


class InvalidSpec(MoorageError):
    pass


class KernelError(MoorageError):
    """A syscall failed. ``errno`` and ``operation`` say which and how."""

    def __init__(self, operation: str, err: int, detail: str = "") -> None:
        self.operation = operation
        self.errno = err
        name = errno_module.errorcode.get(err, str(err))
        text = f"{operation}: {name} ({__import__('os').strerror(err)})"
        if detail:
            text += f": {detail}"
        super().__init__(text)

    @classmethod
    def from_oserror(cls, operation: str, exc: OSError) -> KernelError:
        return cls(operation, exc.errno or 0, exc.filename and str(exc.filename) or "")


class MissingFeature(KernelError):
    pass


class ExecFailed(MoorageError):
    """The container's process could not be executed."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class CleanupError(MoorageError):
    """Teardown failed; ``first`` is what failed before it, if anything."""

    def __init__(self, message: str, first: BaseException | None = None) -> None:
        super().__init__(message if first is None else f"{message} (after: {first})")
        self.first = first
