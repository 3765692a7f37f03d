"""Exception hierarchy.

Every error the package raises on purpose derives from :class:`SuperresError`
and from the matching built-in exception, so callers can catch either.  The
CLI turns a ``SuperresError`` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations


def shown(name) -> str:
    """A file name as a message shows it: control characters (a newline in a
    name, a terminal escape) written as escapes, so that it stays on its line."""
    text = str(name)
    if all(c.isprintable() for c in text):
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def one_line(text) -> str:
    """A message as one line: each line break with the blanks around it (a
    decoder's multi-line message) becomes one space, other control
    characters escapes; other spaces stay as they are (a name's two spaces)."""
    import re

    return shown(re.sub(r"[ \t]*[\r\n\v\f]+[ \t]*", " ", str(text)).strip())


def describe(error: BaseException) -> str:
    """An exception as the one line the CLI prints: a :class:`SuperresError`'s
    file name exactly (escaped only where :func:`shown` must), then its
    message folded onto the line; any other exception folded whole."""
    if isinstance(error, SuperresError):
        message = one_line(error.message)
        return f"{shown(error.path)}: {message}" if error.path else message
    return one_line(error)


class SuperresError(Exception):
    """Base class of all errors raised on purpose by superres_gpu.

    ``path`` (optional) names the file the problem is about; the CLI prints it
    in front of the message.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:  # one line, file first
        if self.path:
            return f"{shown(self.path)}: {self.message}"
        return self.message


class InputError(SuperresError, ValueError):
    """Bad input: missing, unreadable, corrupt, wrong size, too few frames."""


class OutputError(SuperresError, OSError):
    """The output cannot be written (exists, unwritable, would overwrite an input)."""


class ConfigError(SuperresError, ValueError):
    """An option value is out of range or inconsistent."""


class BackendUnavailableError(SuperresError, RuntimeError):
    """The requested compute backend cannot be used on this machine."""


class KernelError(SuperresError, RuntimeError):
    """A CUDA kernel could not be found, compiled or launched."""


class AlignmentError(SuperresError, RuntimeError):
    """Alignment could not produce a usable result (e.g. no frame aligned)."""
