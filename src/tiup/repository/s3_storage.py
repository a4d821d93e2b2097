"""A mirror in S3-compatible object storage (AWS S3, Ceph RGW, MinIO): ``s3://BUCKET/PREFIX``.

The :class:`~tiup.repository.storage.Storage` of a bucket. There is no lock: any number
of writers on any number of machines commit at once, and S3's conditional PUTs decide
(``docs/adr/0008-s3-object-storage.md`` records the protocol and why)::

    1. tarballs          PUT If-None-Match: *   (identical bytes already there: kept;
                         different bytes: ConflictError "tarball-exists", never replaced)
                         above MULTIPART_THRESHOLD (5 GiB, S3's single-PUT limit): HEAD,
                         an unconditional multipart upload (S3 ignores conditions on its
                         completion), completed only if the parts read have the verified
                         length and hashes, and a HEAD that checks the stored sha256 is
                         ours
    2. N.<name>.json     PUT If-None-Match: *   (created only if absent)
    3. snapshot.json     PUT If-Match: <etag it was read with>      compare-and-swap
    4. timestamp.json    PUT If-Match: <etag it was read with>      the commit point

A writer that loses a race gets :class:`~tiup.errors.ConflictError` (``code``
:data:`~tiup.repository.storage.EXISTS` or :data:`~tiup.repository.storage.CHANGED`);
:class:`~tiup.repository.writer.LocalWriter` then reads the new state and runs the whole
change again on top of it. Versioned names a dead or losing writer created but never
referenced are skipped (:meth:`S3Storage.first_free`) and removed later by
``tiup mirror prune --orphans``.

Ceph RGW's quirks, handled here: ``If-Match`` takes the ETag without its double quotes
(AWS takes both); ``If-Match`` on a missing key answers 412 (AWS: 404); both are a
``CHANGED`` conflict. boto3 is imported only when an ``s3://`` mirror is used; endpoint,
region and credentials come the standard AWS way (``AWS_ENDPOINT_URL[_S3]``,
``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``..., the shared config files), read by boto3.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from tiup.errors import (
    ConflictError,
    FetchError,
    IntegrityError,
    InvalidNameError,
    NotFoundError,
    RepositoryError,
    SizeLimitError,
    TarballError,
    TiupError,
)
from tiup.hashing import CHUNK, FileInfo, Hasher
from tiup.manifest.names import is_hex_digest, object_name, s3_address
from tiup.repository.rules import is_bootstrap
from tiup.repository.storage import CHANGED, EXISTS, Entry, Mode, Storage, Tag, Transaction, Write
from tiup.settings import Settings, current
from tiup.transport.base import Fetcher
from tiup.transport.chunks import Chunks

SCHEME = "s3://"
#: ``code`` of the conflict of a tarball name that holds other bytes than this writer's
TARBALL_EXISTS = "tarball-exists"
#: tarballs above this size go up in parts (unconditionally, after a HEAD). Below it, one
#: PUT streamed from the file (bounded memory) with ``If-None-Match: *``: atomic and
#: create-only, and on Ceph RGW faster than multipart (shared/s3/README.md). 5 GiB is
#: S3's limit of a single PUT.
MULTIPART_THRESHOLD = 5 << 30
PART_SIZE = 16 << 20
#: parts of one multipart upload sent at once
PART_THREADS = 4
#: parallel uploads of one commit group, and of a clone's tarballs. More requests in
#: flight than s3transfer's 10 keep the server busy while tiup hashes what it sends
#: (bench/s3.py: 8 → 16 cut a 1 GiB clone into RGW by about 7%)
UPLOAD_THREADS = 16
#: how much of a request body one socket write sends
SEND_BLOCK = 1 << 20
#: first_free asks with HEADs this many times per transaction, then lists the mirror once
HEADS_BEFORE_LISTING = 8
#: the metadata key holding the sha256 of an object's bytes (``x-amz-meta-sha256``)
SHA256_META = "sha256"

#: Called before each S3 request with its operation name (tests stop a writer there).
request_hook: Callable[[str], None] | None = None
#: ``code`` of an upload whose bytes are not the ones verified (refused by tiup before
#: sending, or by the server, which checks the signed payload sha256)
NOT_VERIFIED = "not-the-verified-bytes"
#: the server's answers to a body that does not match its signed sha256 / Content-MD5
_DIGEST_MISMATCH = ("XAmzContentSHA256Mismatch", "BadDigest")
#: botocore's name (``botocore.auth.AUTH_TYPE_MAPS``) of tiup's signer of PUTs that
#: claim their bytes' sha256 (:func:`_claimed_sha256_signer`)
CLAIMED_SHA256_SIGNER = "tiup-s3v4-claimed-sha256"


def is_s3(address: str) -> bool:
    """True for ``s3://`` addresses."""
    return address.startswith(SCHEME)


def make_client(settings: Settings | None = None) -> Any:
    """An S3 client configured the standard AWS way (imports botocore: only here; boto3's
    own layer, which also loads s3transfer, about 0.1 s, is never needed).

    Raises:
        RepositoryError: boto3 is not installed.
    """
    try:
        import botocore.session
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency of the s3 extra
        raise RepositoryError("s3:// mirrors need boto3, which is not installed",
                              hint="pip install 'tiup[s3]' (or pip install boto3)") from exc
    s = settings if settings is not None else current()
    config = Config(
        # the payload's sha256 is always signed (also over https, where botocore would
        # otherwise send UNSIGNED-PAYLOAD): the server then refuses bytes whose sha256
        # is not the signed one, which _payload_guard ties to the verified sha256
        s3={"addressing_style": s.s3_addressing_style, "payload_signing_enabled": True},
        retries={"mode": "standard", "max_attempts": 5},
        # flexible checksums are not understood by every S3 server (Ceph 16); sha256
        # and length are checked by tiup itself
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=2 * UPLOAD_THREADS,
        connect_timeout=s.http.connect_timeout or None,
        read_timeout=s.http.read_timeout or None,
    )
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=_parse_time)
    client = session.create_client("s3", config=config)
    _tune_connections(client)
    _sign_claimed_sha256(client)
    if request_hook is not None:
        hook = request_hook

        def before(**kwargs: Any) -> None:
            model = kwargs.get("model")
            hook(getattr(model, "name", "?"))

        client.meta.events.register("before-call.s3", before)
    return client


def _parse_time(value: Any) -> datetime:
    """A response's timestamp (``LastModified``): S3's ISO 8601 form read by
    :meth:`datetime.fromisoformat` (about 30 times faster than botocore's general parser,
    which a listing calls once per object), any other form by botocore's parser."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)  # type: ignore[no-any-return]


def _tune_connections(client: Any) -> None:
    """Two changes to the client's HTTP connections (best effort: where botocore's
    connection classes are not where this expects them, nothing changes but speed):

    - acknowledge each response's first segment at once (Linux ``TCP_QUICKACK``, set
      after a request is sent). A server that writes a response's head and body in two
      ``send`` calls with Nagle's algorithm on (Ceph RGW's beast frontend by default:
      ``tcp_nodelay=0``) holds the body until the head is acknowledged, and the
      client's delayed ACK makes that about 40 ms per small GET;
    - send bodies in blocks of :data:`SEND_BLOCK` instead of 16 KiB (fewer Python
      iterations per uploaded byte).
    """
    quickack = getattr(socket, "TCP_QUICKACK", None)
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    classes = getattr(session, "_pool_classes_by_scheme", None)
    if not isinstance(classes, dict):
        return
    for scheme, pool in list(classes.items()):
        connection = getattr(pool, "ConnectionCls", None)
        if connection is None or getattr(connection, "_tiup_tuned", False):
            continue

        class TunedConnection(connection):  # type: ignore[misc,valid-type]
            _tiup_tuned = True

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("blocksize", SEND_BLOCK)
                super().__init__(*args, **kwargs)

            def getresponse(self, *args: Any, **kwargs: Any) -> Any:
                sock = getattr(self, "sock", None)
                if sock is not None and quickack is not None:
                    with suppress(OSError):
                        sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
                return super().getresponse(*args, **kwargs)

        # the same dict is the pool manager's (and any proxy manager's) pool_classes_by_scheme
        classes[scheme] = type(pool.__name__, (pool,), {"ConnectionCls": TunedConnection})


def _sign_claimed_sha256(client: Any) -> None:
    """Sign a PutObject whose body is a :class:`SentBody` (a clone's tarball, sent from
    the source's file, whose sha512 tiup checks on the bytes it sends) with the sha256 it
    claims (``x-amz-meta-sha256``, the signed manifest's) as its payload hash, instead of
    letting botocore read the whole file once more to hash it before sending it. The
    server hashes the body it receives and refuses it unless it has the signed sha256
    (``XAmzContentSHA256Mismatch``; AWS S3 and Ceph RGW check it): so what is stored
    under the claim has the claimed sha256, checked on the bytes that were sent, and
    the file is read once. Every other request (and a claim that is not a sha256
    digest) is signed as botocore signs it, with its own hash of the body, which
    :func:`_payload_guard` compares with the claim before anything is sent."""
    import botocore.auth

    if CLAIMED_SHA256_SIGNER not in botocore.auth.AUTH_TYPE_MAPS:
        class ClaimedSha256Auth(botocore.auth.S3SigV4Auth):  # type: ignore[misc]
            def payload(self, request: Any) -> str:
                claimed = _header(request, f"x-amz-meta-{SHA256_META}")
                if request.method == "PUT" and isinstance(request.body, SentBody) \
                        and is_hex_digest(claimed, 64):
                    return str(claimed)
                return str(super().payload(request))

        botocore.auth.AUTH_TYPE_MAPS[CLAIMED_SHA256_SIGNER] = ClaimedSha256Auth

    def choose(signature_version: Any = None, signing_name: Any = None,
               context: Any = None, **_: Any) -> str | None:
        # only where botocore would sign with its S3 SigV4 signer ("v4" that its own
        # generic choose-signer handler, called after this one, turns into "s3v4"): not
        # an anonymous client, not SigV4a or S3 Express, not an unsigned-body operation
        auth_type = (context or {}).get("auth_type")
        if signing_name == "s3" and signature_version in ("v4", "s3v4") \
                and auth_type in (None, "v4", "s3v4"):
            return CLAIMED_SHA256_SIGNER
        return None

    client.meta.events.register("choose-signer.s3.PutObject", choose,
                                unique_id="tiup-claimed-sha256")


def _header(request: Any, name: str) -> str | None:
    value = request.headers.get(name)
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return None if value is None else str(value)


def _payload_guard(request: Any, **_: Any) -> None:
    """A PUT that claims ``x-amz-meta-sha256`` (the value a later writer adopts an existing
    object by, :meth:`S3Storage._same_bytes`) must be signed with exactly that payload
    sha256, and the server refuses a body that differs from the signed sha256
    (``XAmzContentSHA256Mismatch``). For a :class:`SentBody`, tiup's signer
    (:func:`_sign_claimed_sha256`) signs the claim itself; otherwise the signed sha256 is
    botocore's hash of the bytes it read, which must be the claim. So bytes that changed
    after verification can never be stored under a claim of the verified sha256. Runs
    on botocore's ``before-send``, after signing (and again on a retry)."""
    claimed = _header(request, f"x-amz-meta-{SHA256_META}")
    if claimed is None:
        return
    signed = _header(request, "X-Amz-Content-SHA256")
    if signed != claimed:
        where = str(getattr(request, "url", "")).split("?", 1)[0]
        raise IntegrityError(
            f"refusing to upload {where}: its bytes are not the verified ones (sha256 "
            f"{signed} read, {claimed} verified)", file=where, code=NOT_VERIFIED,
            hint="the source file changed after it was verified; run the command again")


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def _status(exc: BaseException) -> tuple[str, int]:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _is_missing(exc: BaseException) -> bool:
    code, status = _status(exc)
    return status == 404 or code in ("NoSuchKey", "NotFound", "404")


def _is_precondition(exc: BaseException) -> bool:
    code, status = _status(exc)
    # 412 everywhere; AWS answers 409 ConditionalRequestConflict to a concurrent
    # conditional write and 404 to If-Match on a missing key (RGW: 412)
    return status == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict")


def _failure(exc: BaseException, what: str, where: str) -> FetchError:
    """The error of a failed request (never a traceback): what, where, and a hint."""
    code, status = _status(exc)
    if code == "NoSuchBucket":
        return FetchError(f"cannot {what}: the bucket of {where} does not exist",
                          file=where, reason="no such bucket",
                          hint="create the bucket first (aws s3 mb s3://BUCKET)")
    if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId",
                                 "SignatureDoesNotMatch"):
        return FetchError(f"cannot {what} {where}: access denied ({code or status})",
                          file=where, reason="access denied",
                          hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE "
                               "and the bucket policy")
    reason = code or type(exc).__name__
    detail = str(exc).splitlines()[0] if str(exc) else reason
    return FetchError(f"cannot {what} {where}: {detail}", file=where, reason=reason,
                      hint="check the endpoint (AWS_ENDPOINT_URL), the region and the network")


def _etag(value: object) -> Tag:
    """An ETag without its double quotes (the form Ceph RGW's If-Match compares)."""
    return Tag(str(value).strip().strip('"'))


@dataclass
class _Staged:
    """One staged file: bytes in memory, or a local file and its hashes."""

    info: FileInfo
    data: bytes | None = None
    path: Path | None = None


class S3Fetcher(Fetcher):
    """Reads the files of a mirror in a bucket (GET, ranged GET, listing)."""

    def __init__(self, storage: S3Storage, *, record: bool = True):
        self.storage = storage
        self.address = storage.location
        self._record = record

    def fetch(self, resource: str, max_size: int | None) -> bytes:
        name = resource.lstrip("/")
        data, tag = self.storage._get(name, max_size)
        if self._record:
            self.storage.record_read(name, tag)
            if name == "snapshot.json":
                self.storage._snapshot = data
        return data

    def stream(self, resource: str, max_size: int | None,
               offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        return self.storage._stream(resource.lstrip("/"), max_size, offset)

    def stream_range(self, resource: str, max_size: int | None, offset: int = 0, *,
                     if_range: str | None = None) -> AbstractContextManager[Chunks]:
        return self.storage._stream(resource.lstrip("/"), max_size, offset, if_range)

    def exists(self, resource: str) -> bool:
        return self.storage.stat(resource.lstrip("/")) is not None

    def list_files(self) -> list[str] | None:
        return [e.name for e in self.storage.list("")]

    def location(self, resource: str) -> str:
        return self.storage.location_of(resource.lstrip("/"))


class S3Storage(Storage):
    """The files of a mirror under ``s3://BUCKET/PREFIX`` (see the module docstring).

    Raises (constructing):
        InvalidNameError: an unsafe bucket or prefix.
        RepositoryError: boto3 is missing.
    """

    #: writers commit with conditional requests, not under a lock: a lost race is
    #: retried on the new state, and versioned names already taken are skipped
    concurrent = True

    def __init__(self, address: str, *, settings: Settings | None = None,
                 client: Any = None):
        super().__init__()
        self.bucket, self.prefix = s3_address(address)
        self.location = f"{SCHEME}{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.settings = settings if settings is not None else current()
        self.client = client if client is not None else make_client(self.settings)
        self.client.meta.events.register("before-send.s3.PutObject", _payload_guard,
                                         unique_id="tiup-payload-guard")
        self._tags_lock = threading.Lock()
        #: the bytes of snapshot.json the fetcher last returned (see last_read)
        self._snapshot: bytes | None = None
        #: first_free's calls in this transaction, and its listing of taken names
        self._first_free_calls = 0
        self._taken: set[str] | None = None

    # ------------------------------------------------------------ names
    def key(self, name: str) -> str:
        """The object key of mirror file ``name``. Raises NotFoundError (unsafe name)."""
        try:
            object_name(name)
        except InvalidNameError as exc:
            raise NotFoundError(f"{name!r} is not a file name in mirror {self.location}",
                                file=name) from exc
        return f"{self.prefix}/{name}" if self.prefix else name

    def _name_of(self, key: str) -> str | None:
        """The mirror name of a listed key (None: outside the prefix or unsafe)."""
        base = f"{self.prefix}/" if self.prefix else ""
        if not key.startswith(base):
            return None
        name = key[len(base):]
        try:
            return object_name(name)
        except InvalidNameError:
            return None

    def last_read(self, name: str) -> bytes | None:
        return self._snapshot if name == "snapshot.json" else None

    def record_read(self, name: str, tag: Tag) -> None:
        with self._tags_lock:
            super().record_read(name, tag)

    def _call(self, op: str, what: str, name: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, op)(Bucket=self.bucket, **kwargs)
        except _errors() as exc:
            if _is_missing(exc) and _status(exc)[0] != "NoSuchBucket":
                raise NotFoundError(f"{name} not found in mirror {self.location}",
                                    file=self.location_of(name), reason="not found") from exc
            raise _failure(exc, what, self.location_of(name)) from exc

    # ----------------------------------------------------------------- reads
    def fetcher(self) -> S3Fetcher:
        return S3Fetcher(self)

    def _get(self, name: str, max_size: int | None) -> tuple[bytes, Tag]:
        resp = self._call("get_object", "read", name, Key=self.key(name))
        body = resp["Body"]
        try:
            length = int(resp.get("ContentLength", 0))
            if max_size is not None and length > max_size:
                raise SizeLimitError(f"{self.location_of(name)} is larger than {max_size} "
                                     "bytes", file=self.location_of(name), reason="too large")
            try:
                data: bytes = body.read(None if max_size is None else max_size + 1)
            except _errors() as exc:
                raise _failure(exc, "read", self.location_of(name)) from exc
            if max_size is not None and len(data) > max_size:
                raise SizeLimitError(f"{self.location_of(name)} is larger than {max_size} "
                                     "bytes", file=self.location_of(name), reason="too large")
        finally:
            body.close()
        return data, _etag(resp.get("ETag", ""))

    @contextmanager
    def _stream(self, name: str, max_size: int | None, offset: int = 0,
                if_range: str | None = None) -> Iterator[Chunks]:
        extra: dict[str, Any] = {}
        if offset > 0:
            extra["Range"] = f"bytes={offset}-"
            if if_range:
                extra["IfMatch"] = if_range
        try:
            resp = self._call("get_object", "read", name, Key=self.key(name), **extra)
        except FetchError as exc:
            # the object changed since (If-Match), or the range is past its end: whole file
            if offset > 0 and exc.reason in ("PreconditionFailed", "InvalidRange"):
                resp = self._call("get_object", "read", name, Key=self.key(name))
                offset = 0
            else:
                raise
        start = offset if "ContentRange" in resp else 0
        total = int(resp.get("ContentLength", 0)) + start
        where = self.location_of(name)
        body = resp["Body"]
        if max_size is not None and total > max_size:
            body.close()
            raise SizeLimitError(f"{where} is larger than {max_size} bytes", file=where,
                                 reason="too large")
        errors = _errors()

        def chunks() -> Iterator[bytes]:
            try:
                while True:
                    block = body.read(CHUNK)
                    if not block:
                        return
                    yield block
            except errors as exc:
                raise _failure(exc, "read", where) from exc

        try:
            yield Chunks(chunks(), start=start, requested=offset, size=total,
                         validator=str(_etag(resp.get("ETag", ""))) or None)
        finally:
            body.close()

    def read(self, name: str, max_size: int | None = None) -> bytes:
        return self._get(name, max_size)[0]

    def _head(self, name: str) -> dict[str, Any] | None:
        try:
            resp: dict[str, Any] = self._call("head_object", "look at", name, Key=self.key(name))
        except NotFoundError:
            return None
        return resp

    def stat(self, name: str) -> Entry | None:
        head = self._head(name)
        if head is not None:
            return Entry(name, int(head.get("ContentLength", 0)),
                         head["LastModified"].timestamp())
        below = self.list(name.rstrip("/") + "/")
        if below:
            return Entry(name, sum(e.size for e in below), max(e.mtime for e in below),
                         directory=True)
        return None

    def list(self, prefix: str = "") -> builtins.list[Entry]:
        recursive = prefix.endswith("/")
        base = f"{self.prefix}/" if self.prefix else ""
        kwargs: dict[str, Any] = {"Prefix": base + prefix}
        if not recursive:
            kwargs["Delimiter"] = "/"
        out: builtins.list[Entry] = []
        token: str | None = None
        while True:
            if token:
                kwargs["ContinuationToken"] = token
            resp = self._call("list_objects_v2", "list", prefix or ".", **kwargs)
            for obj in resp.get("Contents", []):
                name = self._name_of(str(obj.get("Key", "")))
                if name is not None:
                    out.append(Entry(name, int(obj.get("Size", 0)),
                                     obj["LastModified"].timestamp()))
            if not resp.get("IsTruncated"):
                break
            token = resp.get("NextContinuationToken")
            if not token:
                break
        return sorted(out, key=lambda e: e.name)

    def file_info(self, name: str) -> FileInfo:
        hasher = Hasher()
        with self._stream(name, None) as chunks:
            for block in chunks:
                hasher.update(block)
        return hasher.info()

    def tag(self, name: str) -> Tag | None:
        head = self._head(name)
        return None if head is None else _etag(head.get("ETag", ""))

    def first_free(self, name_of: Callable[[int], str], start: int) -> int:
        """The first version from ``start`` whose name is not taken (a dead or losing
        writer's unreferenced ``N.<name>.json`` is skipped, never overwritten).

        A HEAD per name for the first few calls of a transaction; past
        :data:`HEADS_BEFORE_LISTING` (a clone writing many components) one listing of
        the mirror answers the rest. Either may miss a name another writer creates a
        moment later: the create-only PUT of the commit then fails and the change is
        run again, so a stale answer costs a retry, never a wrong write."""
        self._first_free_calls += 1
        if self._first_free_calls > HEADS_BEFORE_LISTING and self._taken is None:
            self._taken = {e.name for e in self.list("")}
        version = start
        while (name_of(version) in self._taken if self._taken is not None
               else self._head(name_of(version)) is not None):
            version += 1
        return version

    # ---------------------------------------------------------- single writes
    def _put(self, name: str, body: Any, *, if_none_match: bool = False,
             if_match: Tag | None = None, sha256: str | None = None) -> Tag:
        """One PUT; raises ConflictError (code None) when its precondition failed."""
        kwargs: dict[str, Any] = {"Key": self.key(name), "Body": body}
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = str(if_match)  # unquoted: what RGW compares
        if sha256 is not None:
            kwargs["Metadata"] = {SHA256_META: sha256}
        try:
            resp = self.client.put_object(Bucket=self.bucket, **kwargs)
        except _errors() as exc:
            if _is_precondition(exc) or (if_match is not None and _is_missing(exc)):
                raise ConflictError(f"{name} of mirror {self.location} changed meanwhile",
                                    file=self.location_of(name)) from exc
            if _status(exc)[0] in _DIGEST_MISMATCH:
                raise IntegrityError(
                    f"{self.location_of(name)}: the server refused the upload, its bytes "
                    "are not the verified ones (not the signed sha256)",
                    file=self.location_of(name),
                    code=NOT_VERIFIED,
                    hint="the source file changed after it was verified; run the command "
                         "again") from exc
            failure = _failure(exc, "write", self.location_of(name))
            raise RepositoryError(failure.message, file=failure.file,
                                  hint=failure.hint) from exc
        return _etag(resp.get("ETag", ""))

    def _same_bytes(self, name: str, info: FileInfo) -> bool:
        """True if ``name`` holds bytes of this length and sha256."""
        head = self._head(name)
        if head is None:
            return False
        if int(head.get("ContentLength", -1)) != info.length:
            return False
        meta = head.get("Metadata") or {}
        stored = meta.get(SHA256_META)
        if stored is not None:
            return bool(stored == info.sha256)
        return self.file_info(name).sha256 == info.sha256

    def put_new(self, name: str, data: bytes) -> Tag:
        try:
            return self._put(name, data, if_none_match=True,
                             sha256=hashlib.sha256(data).hexdigest())
        except ConflictError as exc:
            raise ConflictError(f"{name} already exists in mirror {self.location}",
                                file=self.location_of(name), code=EXISTS) from exc

    def replace(self, name: str, data: bytes, expected: Tag | None) -> Tag:
        try:
            if expected is None:
                return self._put(name, data, if_none_match=True)
            try:
                return self._put(name, data, if_match=expected)
            except ConflictError:
                # Ceph RGW compares If-Match without quotes, which AWS accepts too; a server
                # that wants the quoted form refuses an unchanged object: try that once
                if self.tag(name) != expected:
                    raise
                return self._put(name, data, if_match=Tag(f'"{expected}"'))
        except ConflictError as exc:
            raise ConflictError(f"{name} of mirror {self.location} changed since it was read",
                                file=self.location_of(name), code=CHANGED,
                                hint="read it again and retry") from exc

    def delete(self, name: str) -> bool:
        if name.endswith("/") or self._head(name) is None:
            below = self.list(name.rstrip("/") + "/")
            for entry in below:
                self._call("delete_object", "delete", entry.name, Key=self.key(entry.name))
            return bool(below)
        self._call("delete_object", "delete", name, Key=self.key(name))
        return True

    # ------------------------------------------------------------- policy
    def public_read_statement(self) -> dict[str, Any]:
        """The bucket-policy statement that lets anyone GET the mirror's objects (never
        list or write them): what clients without credentials need."""
        objects = f"arn:aws:s3:::{self.bucket}/" + (f"{self.prefix}/*" if self.prefix else "*")
        return {"Sid": "TiupMirrorPublicRead" + (
                    "".join(c for c in self.prefix if c.isalnum())[:40] if self.prefix else ""),
                "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                "Resource": [objects]}

    def public_read_policy(self) -> dict[str, Any]:
        """A whole bucket policy holding only :meth:`public_read_statement`."""
        return {"Version": "2012-10-17", "Statement": [self.public_read_statement()]}

    def make_public(self) -> None:
        """Add :meth:`public_read_statement` to the bucket's policy (other statements kept).

        Raises:
            FetchError: the policy cannot be read or written (the caller prints it).
        """
        import json

        statement = self.public_read_statement()
        try:
            current_policy = self.client.get_bucket_policy(Bucket=self.bucket)["Policy"]
            policy = json.loads(current_policy)
        except _errors() as exc:
            if _status(exc)[0] not in ("NoSuchBucketPolicy",) and _status(exc)[1] != 404:
                raise _failure(exc, "read the bucket policy of", self.location) from exc
            policy = {"Version": "2012-10-17", "Statement": []}
        except ValueError:
            policy = {"Version": "2012-10-17", "Statement": []}
        statements = [st for st in policy.get("Statement", [])
                      if not (isinstance(st, dict) and st.get("Sid") == statement["Sid"])]
        policy["Statement"] = [*statements, statement]
        try:
            self.client.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))
        except _errors() as exc:
            raise _failure(exc, "set the bucket policy of", self.location) from exc

    # ------------------------------------------------------------ transaction
    def acquire(self, timeout: float) -> None:
        """Nothing to take: conditional writes replace the lock."""

    def release(self) -> None:
        """Nothing to release."""

    def remove_leftovers(self) -> builtins.list[str]:
        """Nothing half-written is ever visible in a bucket (a PUT is atomic); uploaded but
        unreferenced files are ``tiup mirror prune --orphans``'s."""
        return []

    def begin(self) -> S3Transaction:
        self._first_free_calls = 0
        self._taken = None
        return S3Transaction(self)

    def upload_file(self, name: str, source: Path, info: FileInfo) -> None:
        """Create ``name`` from a local file: one conditional PUT up to
        :data:`MULTIPART_THRESHOLD`, else a HEAD and a multipart upload.

        Raises:
            ConflictError: ``name`` holds other bytes (``code`` :data:`TARBALL_EXISTS`).
            RepositoryError: the upload failed.
        """
        if info.length > MULTIPART_THRESHOLD:
            if self._head(name) is None:
                self._multipart(name, source, info)
                if not self._same_bytes(name, info):  # another writer's upload won
                    raise _tarball_conflict(self, name)
                return
        else:
            try:
                with open(source, "rb") as body:
                    self.upload_body(name, body, info)
                return
            except OSError as exc:
                raise RepositoryError(f"cannot read {source}: {exc.strerror or exc}",
                                      file=str(source)) from exc
        if not self._same_bytes(name, info):
            raise _tarball_conflict(self, name)

    def replace_file(self, name: str, source: Path, info: FileInfo) -> bool:
        """Write ``name`` from a local file whatever it holds now, unless it holds these
        bytes already: for ``tiup-<os>-<arch>.tar.gz``, the unsigned copy of the newest
        ``tiup`` that install scripts fetch, which each newer ``tiup`` replaces (no
        manifest names it; the last writer's copy stays). The PUT claims and is signed
        with ``info.sha256`` (:func:`_payload_guard`).

        Returns:
            True if it was written, False if the same bytes were there.

        Raises:
            IntegrityError: the file's bytes are not ``info``'s (``code`` NOT_VERIFIED).
            RepositoryError: the upload failed, or the file cannot be read.
        """
        if self._same_bytes(name, info):
            return False
        if info.length > MULTIPART_THRESHOLD:
            self._multipart(name, source, info)
            return True
        try:
            with open(source, "rb") as body:
                self._put(name, body, sha256=info.sha256)
        except OSError as exc:
            raise RepositoryError(f"cannot read {source}: {exc.strerror or exc}",
                                  file=str(source)) from exc
        return True

    def copy_within(self, source: str, name: str, info: FileInfo) -> bool:
        """Make ``name`` a server-side copy of ``source`` (its bytes and its sha256 claim),
        which must hold ``info``'s bytes, unless ``name`` holds them already. For files
        no manifest names (``tiup-<os>-<arch>.tar.gz``): the copy is unconditional, as
        copies are on Ceph RGW, and the last writer's stays.

        Returns:
            True if it was copied, False if the same bytes were there.

        Raises:
            TarballError: ``source`` does not hold ``info``'s length and sha256 claim.
            RepositoryError: the copy failed.
        """
        if self._same_bytes(name, info):
            return False
        if not self._same_bytes(source, info):
            raise TarballError(f"{self.location_of(source)} does not hold the verified "
                               "bytes to copy", file=self.location_of(source))
        self._call("copy_object", "copy", name, Key=self.key(name),
                   CopySource={"Bucket": self.bucket, "Key": self.key(source)},
                   MetadataDirective="COPY")
        return True

    def upload_body(self, name: str, body: BinaryIO | SentBody, info: FileInfo) -> bool:
        """Create ``name`` (at most :data:`MULTIPART_THRESHOLD` bytes) from a body whose
        bytes must be ``info``'s: one PUT ``If-None-Match: *`` that claims and is signed
        with ``info.sha256`` (see :func:`_sign_claimed_sha256`), which the server checks
        on the bytes it receives. Identical bytes already there are kept.

        Returns:
            True if this PUT stored the bytes, False if the same bytes were already there
            (nothing was read from ``body``).

        Raises:
            IntegrityError: the bytes sent are not ``info``'s (``code`` NOT_VERIFIED):
                nothing was stored.
            ConflictError: ``name`` holds other bytes (``code`` :data:`TARBALL_EXISTS`).
            RepositoryError: the upload failed.
        """
        assert info.length <= MULTIPART_THRESHOLD
        try:
            self._put(name, body, if_none_match=True, sha256=info.sha256)
            return True
        except ConflictError:
            pass
        if not self._same_bytes(name, info):
            raise _tarball_conflict(self, name)
        return False

    def _multipart(self, name: str, source: Path, info: FileInfo) -> None:
        """Upload ``source`` in parts of :data:`PART_SIZE` (up to :data:`PART_THREADS` at
        once), reading the file once, in order: each part's sha256 is signed (the server
        checks the part it receives), and the whole file's length, sha256 and sha512 are
        computed as the parts are read and must be ``info``'s before the upload is
        completed; otherwise (a file that changed after it was verified) it is aborted
        and nothing is stored. At most ``PART_THREADS + 1`` parts are in memory.

        Raises:
            IntegrityError: the bytes read are not ``info``'s (``code`` NOT_VERIFIED).
            RepositoryError: the upload failed, or the file cannot be read.
        """
        key, where = self.key(name), self.location_of(name)
        created = self._call("create_multipart_upload", "upload", name, Key=key,
                             Metadata={SHA256_META: info.sha256})
        upload_id = str(created["UploadId"])
        hasher = Hasher()
        room = threading.Semaphore(PART_THREADS)
        failed = threading.Event()

        def send(number: int, data: bytes) -> dict[str, Any]:
            try:
                resp = self._call("upload_part", "upload", name, Key=key, UploadId=upload_id,
                                  PartNumber=number, Body=data)
                return {"PartNumber": number, "ETag": resp["ETag"]}
            except BaseException:
                failed.set()  # read no further: the failure is raised below
                raise
            finally:
                room.release()

        try:
            with open(source, "rb") as fh, ThreadPoolExecutor(PART_THREADS) as pool:
                sent: list[Future[dict[str, Any]]] = []
                while True:
                    room.acquire()
                    data = b"" if failed.is_set() else fh.read(PART_SIZE)
                    if not data:
                        room.release()
                        break
                    hasher.update(data)
                    sent.append(pool.submit(send, len(sent) + 1, data))
                parts = [f.result() for f in sent]
            got = hasher.info()
            if (got.length, got.sha256, got.sha512) != \
                    (info.length, info.sha256, info.sha512 or got.sha512):
                raise IntegrityError(
                    f"refusing to complete the upload of {where}: its bytes are not the "
                    f"verified ones ({got.length} bytes, sha256 {got.sha256} read; "
                    f"{info.length} bytes, sha256 {info.sha256} verified)", file=where,
                    code=NOT_VERIFIED, hint="the source file changed after it was verified; "
                                            "run the command again")
            self._call("complete_multipart_upload", "upload", name, Key=key,
                       UploadId=upload_id, MultipartUpload={"Parts": parts})
        except OSError as exc:
            self._abort(name, upload_id)
            raise RepositoryError(f"cannot read {source}: {exc.strerror or exc}",
                                  file=str(source)) from exc
        except BaseException:
            self._abort(name, upload_id)
            raise

    def _abort(self, name: str, upload_id: str) -> None:
        """Drop an unfinished multipart upload and its parts (best effort: a lifecycle
        rule for incomplete uploads removes what this cannot)."""
        with suppress(TiupError):
            self._call("abort_multipart_upload", "upload", name, Key=self.key(name),
                       UploadId=upload_id)


class SentBody:
    """The first ``length`` bytes of an open file as a request body, hashed (sha512) as
    botocore reads them to send them: what was sent is checked without reading the file
    again. botocore reads a body once from its start, and again from its start when it
    retries a request (each rewind starts the hash again).

    Raises (from :meth:`read`):
        IntegrityError: the file ended before ``length`` bytes (``code`` NOT_VERIFIED).
    """

    def __init__(self, fh: BinaryIO, length: int, where: str):
        self._fh = fh
        self._length = length
        self._where = where
        self._pos = 0
        self._h512 = hashlib.sha512()

    def __len__(self) -> int:
        return self._length

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        target = base + offset
        if target == self._pos:
            return target
        if target != 0:
            raise OSError(f"{self._where} is sent from its start only")
        self._fh.seek(0)
        self._pos = 0
        self._h512 = hashlib.sha512()
        return 0

    def read(self, size: int | None = -1) -> bytes:
        left = self._length - self._pos
        want = left if size is None or size < 0 else min(size, left)
        data = self._fh.read(want) if want else b""
        while len(data) < want:
            more = self._fh.read(want - len(data))
            if not more:
                raise IntegrityError(
                    f"{self._where} ended after {self._pos + len(data)} of its "
                    f"{self._length} bytes while it was sent", file=self._where,
                    code=NOT_VERIFIED, hint="the source file changed; run the command again")
            data += more
        self._h512.update(data)
        self._pos += len(data)
        return data

    def sent_sha512(self) -> str | None:
        """The sha512 of the bytes sent, once all ``length`` were read (else None)."""
        return self._h512.hexdigest() if self._pos == self._length else None


def _tarball_conflict(storage: S3Storage, name: str) -> ConflictError:
    return ConflictError(
        f"{name} already exists in mirror {storage.location} with other bytes",
        file=storage.location_of(name), code=TARBALL_EXISTS,
        hint="another publisher is publishing this version with different content; if an "
             "earlier publish died, `tiup mirror prune --orphans` removes what it left")


class S3Transaction(Transaction):
    """Files staged by one writer: bytes in memory, tarballs as local files, uploaded
    group by group at :meth:`commit` with the preconditions of the module docstring."""

    def __init__(self, storage: S3Storage):
        self.storage = storage
        self.files: dict[str, _Staged] = {}
        self._dir: Path | None = None

    def put_bytes(self, name: str, data: bytes) -> FileInfo:
        self.storage.key(name)
        info = FileInfo.of_bytes(data)
        self.files[name] = _Staged(info, data=data)
        return info

    def put_file(self, name: str, source: Path) -> FileInfo:
        """Keep a link to (else a copy of) ``source`` until the commit uploads it: the
        caller may remove its file meanwhile."""
        self.storage.key(name)
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="tiup-s3-staging-"))
        kept = self._dir / f"{len(self.files)}-{name}"
        try:
            try:
                os.link(source, kept)
            except OSError:
                shutil.copyfile(source, kept)
            info = FileInfo.of_file(kept)
        except OSError as exc:
            raise RepositoryError(f"cannot read {source}: {exc.strerror or exc}",
                                  file=str(source)) from exc
        self.files[name] = _Staged(info, path=kept)
        return info

    def has(self, name: str) -> bool:
        return name in self.files

    def commit(self, groups: Sequence[Sequence[Write]]) -> list[str]:
        done: list[str] = []
        for group in groups:
            if len(group) > 1:
                with ThreadPoolExecutor(min(UPLOAD_THREADS, len(group))) as pool:
                    futures = [pool.submit(self._write, w) for w in group]
                    errors: list[BaseException] = []
                    for future in futures:
                        exc = future.exception()
                        if exc is not None:
                            errors.append(exc)
                    if errors:
                        raise errors[0]
            else:
                for write in group:
                    self._write(write)
            done.extend(w.name for w in group)
        return done

    def _write(self, write: Write) -> None:
        storage = self.storage
        staged = self.files[write.name]
        name = write.name
        if write.mode is Mode.SWAP:
            assert staged.data is not None
            storage.replace(name, staged.data, write.tag)
            return
        if staged.path is not None:
            if is_bootstrap(name):
                storage.replace_file(name, staged.path, staged.info)
            else:
                storage.upload_file(name, staged.path, staged.info)
            return
        assert staged.data is not None
        try:
            storage.put_new(name, staged.data)
        except ConflictError:
            if not storage._same_bytes(name, staged.info):
                if write.mode is Mode.PUT:
                    raise _tarball_conflict(storage, name) from None
                raise
        except TiupError:
            raise

    def discard(self) -> None:
        self.files.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
