"""The one exception tree of tiup.

Every error a user can meet is a :class:`TiupError`. Each carries what a
person needs to act: the message (what failed), optionally the ``file`` or
component it concerns, and a ``hint`` (what to do about it). The CLI maps
the classes to exit codes in one place (:mod:`tiup.cli.errors`); library
code never prints and never exits.

Third-party exceptions (``cryptography``, ``urllib3``, ``OSError``) are
translated into this tree at the boundary where they occur, with
``raise ... from exc`` so ``--verbose`` can still show the cause.

::

    TiupError
    ├── UsageError                  bad arguments or flags (exit 2)
    ├── ManifestError               a manifest is malformed (JSON, members, types)
    │   └── CanonicalFormError      bytes are not canonical JSON where they must be
    ├── TiupKeyError                a key file or key object is unusable
    │   ├── KeyFormatError          malformed key file / PEM / base64
    │   ├── UnsupportedKeyError     key type or scheme tiup cannot use
    │   └── MissingKeyError         a needed private key is not available
    ├── VerificationError           trust rules rejected a document
    │   ├── SignatureError          bad / missing / duplicate signatures, wrong _type
    │   ├── ExpiredError            a manifest (or the manifest declaring its keys) expired
    │   ├── RollbackError           a version went backwards or skipped
    │   └── IntegrityError          length or hash does not match its parent manifest
    ├── FetchError                  a file could not be obtained from a mirror
    │   ├── NotFoundError           the mirror has no such file (ends a root walk)
    │   └── SizeLimitError          a download exceeded its size cap
    ├── InvalidNameError            a component, owner or version name is not safe
    ├── RepositoryError             a mirror write (publish, grant, ...) was refused
    │   ├── ConflictError           another writer changed the mirror first / lock busy
    │   └── TarballError            a published tarball is unusable or does not match
    │       └── MissingTarballError a manifest names a tarball nobody uploaded
    └── InstallError                a component could not be installed or run

"""

from __future__ import annotations


class TiupError(Exception):
    """Root of every error tiup raises on purpose.

    Attributes:
        message: what failed, in one sentence.
        file: the file, URL or component the error concerns, if any.
        hint: what the user can do about it, if anything useful.
    """

    exit_code = 1

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(TiupError):
    """The command line was wrong: missing or invalid arguments or flags."""

    exit_code = 2


class ManifestError(TiupError):
    """A manifest could not be parsed or has members of the wrong shape."""


class CanonicalFormError(ManifestError):
    """Bytes that must be canonical JSON are not."""


class TiupKeyError(TiupError):
    """A key or key file cannot be used."""


class KeyFormatError(TiupKeyError):
    """A key file, PEM block, or base64 payload is malformed."""


class UnsupportedKeyError(TiupKeyError):
    """A key type or signature scheme is not supported."""


class MissingKeyError(TiupKeyError):
    """A private key needed for signing was not found."""


class InvalidNameError(TiupError):
    """A component id, owner id or version is not a safe name."""


class VerificationError(TiupError):
    """A document failed the trust rules."""


class SignatureError(VerificationError):
    """Signatures are invalid, too few, duplicated, or the document is of the wrong type."""


class ExpiredError(VerificationError):
    """A manifest, or the manifest that declares its signing keys, has expired."""


class RollbackError(VerificationError):
    """A manifest version is older than one already trusted, or is not the expected one."""


class IntegrityError(VerificationError):
    """A file's length or hash differs from what its parent manifest declares."""


class FetchError(TiupError):
    """A file could not be obtained from a mirror.

    Attributes:
        reason: why, in a few plain words without the file's location ("connection
            refused", "HTTP 503"), for one-line-per-file summaries; the message if
            not given.
    """

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None,
                 reason: str | None = None):
        super().__init__(message, file=file, hint=hint)
        self.reason = reason or message


class NotFoundError(FetchError):
    """The mirror has no such file."""


class SizeLimitError(FetchError):
    """A download exceeded the maximum size allowed for it."""


class RepositoryError(TiupError):
    """A write to a mirror was refused."""


class ConflictError(RepositoryError):
    """The mirror changed underneath the writer, or another writer holds the lock."""


class TarballError(RepositoryError):
    """A tarball to publish is not a gzip tar, lacks its entry, or differs from its manifest."""


class MissingTarballError(TarballError):
    """A manifest names a tarball that is neither uploaded nor already in the mirror."""



class InstallError(TiupError):
    """A component could not be installed or started."""
