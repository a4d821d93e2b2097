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
    │   ├── CanonicalFormError      bytes are not canonical JSON where they must be
    │   └── CanonicalJSONError      a value cannot be canonical JSON / bytes not strict JSON
    ├── TiupKeyError                a key file or key object is unusable
    │   ├── KeyFormatError          malformed key file / PEM / base64
    │   ├── UnsupportedKeyError     key type or scheme tiup cannot use
    │   ├── MissingKeyError         a needed private key is not available
    │   └── TokenError              a PKCS#11 module, token, PIN or key object (code says which)
    ├── VerificationError           trust rules rejected a document
    │   ├── SignatureError          bad / missing / duplicate signatures, wrong _type
    │   ├── ExpiredError            a manifest (or the manifest declaring its keys) expired
    │   ├── RollbackError           a version went backwards or skipped
    │   ├── IntegrityError          length or hash does not match its parent manifest
    │   └── OrderError              documents offered to the trust state out of order
    ├── FetchError                  a file could not be obtained from a mirror
    │   ├── NotFoundError           the mirror has no such file (ends a root walk)
    │   ├── SizeLimitError          a download exceeded its size cap
    │   ├── TransientError          may succeed when retried (drop, timeout, 5xx, 429)
    │   └── OfflineError            the network is needed but offline mode is on
    ├── InvalidNameError            a component, owner or version name is not safe
    ├── RepositoryError             a mirror write (publish, grant, ...) was refused
    │   ├── ConflictError           another writer changed the mirror first / lock busy
    │   ├── TarballError            a published tarball is unusable or does not match
    │   │   └── MissingTarballError a manifest names a tarball nobody uploaded
    │   └── BundleError             an air-gap bundle is refused (code: which refusal)
    ├── InstallError                a component could not be installed or run
    │   ├── DamagedInstallError     an installed version's files are gone or broken
    │   └── SelfUpdateError         ``tiup update --self`` cannot replace this tiup
    └── RequestError                the server refuses a request (HTTP status + JSON code)
        ├── MultipartError          the body is not valid multipart/form-data (400)
        ├── UploadTooLarge          an upload passed the per-upload limit (413)
        ├── UploadExpired           an upload sat idle past its TTL (408)
        └── QuotaError              staging it would pass a quota
            ├── StagingFull         staged bytes, or the disk (507)
            └── TooManySessions     upload sessions, all or of one client (429)

"""

from __future__ import annotations


class TiupError(Exception):
    """Root of every error tiup raises on purpose.

    Attributes:
        message: what failed, in one sentence.
        file: the file, URL or component the error concerns, if any.
        hint: what the user can do about it, if anything useful.
        code: a stable reason code for code that must tell cases apart (never the
            message text), e.g. ``"no-signatures"``; None where one class says it all.
    """

    exit_code = 1

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.hint = hint
        self.code = code

    def __str__(self) -> str:
        return self.message


class UsageError(TiupError):
    """The command line was wrong: missing or invalid arguments or flags."""

    exit_code = 2


class ManifestError(TiupError):
    """A manifest could not be parsed or has members of the wrong shape."""


class CanonicalFormError(ManifestError):
    """Bytes that must be canonical JSON are not."""


class CanonicalJSONError(ManifestError, ValueError):
    """A value cannot be encoded as canonical JSON, or bytes are not strict JSON.

    Raised by :mod:`tiup.manifest.canonical` for NaN and infinite floats, non-``str``
    object keys, unsupported types, strings that cannot be represented (a high
    surrogate immediately followed by a low surrogate), circular or too deeply nested
    containers, and (by ``decode_json_strict``) for invalid UTF-8, malformed JSON,
    duplicate object member names, ``NaN``/``Infinity`` literals and out-of-range
    numbers. Also a ``ValueError``, as the codec's contract has always said.
    """


class TiupKeyError(TiupError):
    """A key or key file cannot be used."""


class KeyFormatError(TiupKeyError):
    """A key file, PEM block, or base64 payload is malformed."""


class UnsupportedKeyError(TiupKeyError):
    """A key type or signature scheme is not supported."""


class MissingKeyError(TiupKeyError):
    """A private key needed for signing was not found."""


class TokenError(TiupKeyError):
    """A PKCS#11 (HSM) key cannot be used: ``code`` is one of ``uri``, ``module``,
    ``binding``, ``token-absent``, ``token-ambiguous``, ``token-uninitialised``,
    ``pin-needed``, ``pin-incorrect``, ``pin-locked``, ``object-absent``,
    ``object-ambiguous``, ``object-exists``, ``mechanism``, ``key-type``, ``device``."""


class InvalidNameError(TiupError):
    """A component id, owner id or version is not a safe name."""


class VerificationError(TiupError):
    """A document failed the trust rules."""


class SignatureError(VerificationError):
    """Signatures are invalid, too few, duplicated, or the document is of the wrong type."""


class ExpiredError(VerificationError):
    """A manifest, or the manifest that declares its signing keys, has expired.

    Attributes:
        expired_file: the manifest whose expiry is the cause (for signing keys: the
            manifest that declares them, e.g. ``root.json``); defaults to ``file``.
        mirror: the mirror the error concerns, once a caller has named it in the message.
    """

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None,
                 code: str | None = None, expired_file: str | None = None,
                 mirror: str | None = None):
        super().__init__(message, file=file, hint=hint, code=code)
        self.expired_file = expired_file or file
        self.mirror = mirror


class RollbackError(VerificationError):
    """A manifest version is older than one already trusted, or is not the expected one."""


class IntegrityError(VerificationError):
    """A file's length or hash differs from what its parent manifest declares."""


class OrderError(VerificationError):
    """A document was offered to the trust state out of order (a snapshot before its
    timestamp, a second index...): a bug of the caller, never a mirror's fault."""


class FetchError(TiupError):
    """A file could not be obtained from a mirror.

    Attributes:
        reason: why, in a few plain words without the file's location ("connection
            refused", "HTTP 503"), for one-line-per-file summaries; the message if
            not given.
    """

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None,
                 reason: str | None = None, code: str | None = None):
        super().__init__(message, file=file, hint=hint, code=code)
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


class BundleError(RepositoryError):
    """``tiup mirror export`` / ``import`` refused a bundle; ``code`` says which refusal:
    ``foreign`` (made for another mirror), ``rollback`` (older than the target), ``gap``
    (its ``--since`` is not the target's state), ``tampered`` (a file differs from what
    signed metadata or the bundle index declare), ``untrusted`` (a first import without a
    trust anchor), ``malformed`` (not a bundle, or a hostile member), ``not-empty`` (a
    first import into a directory of other files), ``no-history`` (export cannot tell
    what the target holds)."""



class InstallError(TiupError):
    """A component could not be installed or started."""


class TransientError(FetchError):
    """A failure that may succeed when retried (connection drop, timeout, 5xx, 429).

    Fetchers retry these themselves within their budget; callers see one only from a
    stream whose body broke, or wrapped in a plain :class:`FetchError` once the
    budget is spent.

    Attributes:
        retry_after: seconds the server asked us to wait (``Retry-After``), if any.
    """

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None,
                 retry_after: float | None = None, reason: str | None = None):
        super().__init__(message, file=file, hint=hint, reason=reason)
        self.retry_after = retry_after


class OfflineError(FetchError):
    """The network is needed but offline mode is on."""


class DamagedInstallError(InstallError):
    """The selected version has an install record, but its files are damaged."""

    def __init__(self, comp: str, version: str, why: str):
        super().__init__(
            f"component `{comp}` version {version} is damaged ({why})",
            file=f"{comp}:{version}",
            hint=f"reinstall it with `tiup install --force {comp}:{version}`",
        )
        self.comp, self.version, self.why = comp, version, why


class RequestError(TiupError):
    """The server refuses a request; ``http_status`` and ``http_code`` are its JSON answer."""

    http_status = 400
    http_code = "INVALID REQUEST"


class MultipartError(RequestError):
    """The body is not valid ``multipart/form-data``."""

    http_code = "INVALID TARBALL"


class UploadTooLarge(RequestError):
    """The upload passed the per-upload size limit."""

    http_status = 413
    http_code = "TOO LARGE"


class UploadExpired(RequestError):
    """The upload sat idle past the TTL and was removed while it was still open."""

    http_status = 408
    http_code = "UPLOAD EXPIRED"


class QuotaError(RequestError):
    """Accepting this upload would pass a quota."""

    http_status = 507
    http_code = "INSUFFICIENT STORAGE"


class StagingFull(QuotaError):
    """Staged bytes (all clients, this client, or the disk) would pass their limit."""


class TooManySessions(QuotaError):
    """The server, or this client address, holds as many sessions as allowed."""

    http_status = 429
    http_code = "TOO MANY SESSIONS"


class SelfUpdateError(InstallError):
    """``tiup update --self`` did not replace the running tiup (nothing was lost).

    ``code``: ``"not-self-contained"`` (a pip or venv install), ``"no-tiup"`` (the
    mirror has no ``tiup`` for this platform), ``"replace-failed"`` (the file could not
    be replaced), ``"rolled-back"`` (the new one did not answer ``tiup --version``; the
    previous one is back).
    """
