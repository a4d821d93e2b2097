"""Settings: every environment variable the library honours, read once into a typed object.

Like python-tuf's ``UpdaterConfig``, every limit and knob lives in one frozen dataclass,
:class:`Settings`, passed in to whatever needs it (or the part it needs:
:class:`HttpSettings`, :class:`ExtractLimits`). :meth:`Settings.from_env` parses and
validates the whole environment at once; a malformed value is a
:class:`~tiup.errors.UsageError` (exit 2) naming the variable and what it accepts.

| variable | field | default | accepted |
|---|---|---|---|
| `TIUP_HTTP_CONNECT_TIMEOUT` | `http.connect_timeout` | 10 s | seconds; 0: no timeout |
| `TIUP_HTTP_READ_TIMEOUT` | `http.read_timeout` | 60 s | seconds without a byte; 0: none |
| `TIUP_HTTP_RETRIES` | `http.attempts` | 5 | attempts per request (integer; min 1) |
| `TIUP_HTTP_SPEED_LIMIT` | `http.speed_limit` | 1024 | minimum bytes/s; 0: off |
| `TIUP_HTTP_SPEED_TIME` | `http.speed_time` | 30 s | seconds the speed is averaged over; 0: off |
| `TIUP_HTTP_DEADLINE` | `http.deadline` | 120 s | per-file deadline (+ length / speed); 0: none |
| `TIUP_INNER_HTTP_PROXY` | `http.inner_proxy` | none | `host:port` or URL, for every scheme |
| `HTTP(S)_PROXY`, `ALL_PROXY`, `NO_PROXY` | `http.proxies` | none | see below |
| `TIUP_CA_BUNDLE`, else `SSL_CERT_FILE` | `http.ca_bundle` | system | PEM file or cert directory |
| `TIUP_MAX_EXTRACT_BYTES` | `extract.max_bytes` | 8 GiB | integer (`_` allowed); 0: none |
| `TIUP_MAX_EXTRACT_MEMBERS` | `extract.max_members` | 100000 | integer (`_` allowed); 0: none |
| `TIUP_EXPIRY_WARN_DAYS` | `expiry_warn_days` | 7 | days (integer); 0: no warnings |
| `TIUP_CLONE_GIVE_UP` | `clone_give_up` | 30 s | seconds; 0: never give up |
| `TIUP_PUBLISH_BACKOFF` | `publish_backoff` | 2 s | seconds before a publish retry; 0: at once |
| `TIUP_KEEP_SOURCE_TARGET` | `keep_source_target` | off | `enable` or `true`; else off (as TiUP) |
| `TIUP_MIRROR_SYNC_SCRIPT` | `sync_script` | none | a program run after every commit |
| `TIUP_COMPONENT_DATA_DIR` | `component_data_dir` | none | tiup-server: uploads in `packages/` |
| `TIUP_PKCS11_MODULE` | `pkcs11_module` | none | PKCS#11 module (`.so`) for `pkcs11:` keys |
| `TIUP_S3_ADDRESSING_STYLE` | `s3_addressing_style` | `auto` | `path`, `virtual`, `auto` (s3://) |

Seconds and bytes/s are finite numbers, counts are integers; "0" means 0 or less.
Proxies are read as :func:`urllib.request.getproxies_environment` reads them: either
case, lowercase winning, ``HTTP_PROXY`` ignored in a CGI process.

Empty values (and values of blanks) count as unset. The CLI's own presentation
variables (``NO_COLOR``, ``TIUP_VERBOSE``, ``TIUP_NO_PROGRESS``, ``COLUMNS``, ``EDITOR``),
``TIUP_HOME``/``TIUP_MIRRORS``/``TIUP_OFFLINE`` (:mod:`tiup.client.profile`) and
``TIUP_TEST_NOW`` (:mod:`tiup.clock`) are read where they are used; nothing else in
``src/tiup`` reads the environment (``tests/test_settings.py`` checks it).

Who calls :func:`current` (the process-wide settings, read on first use and cached):
the CLI and the server's worker factory, and the library's entry points
(:func:`~tiup.transport.open_fetcher`, :class:`~tiup.client.updater.Updater`,
:func:`~tiup.client.installer.install`, :class:`~tiup.repository.store.Store`,
:func:`~tiup.repository.init.init_mirror`, :func:`~tiup.repository.clone.clone_mirror`)
when their caller passes no settings. Everything below them takes its settings as an
argument and falls back to the built-in defaults, never to the environment. Tests pass
their own ``Settings.from_env({...})``, or call :func:`reset_current`.

One exception, documented here and in ``docs/adr/``: :func:`hand_over_server_config` /
:func:`server_config_blob` carry the mirror server's configuration from the parent
process to granian's worker processes in ``TIUP_SERVE_CONFIG``. That is inter-process
communication, not a user setting: it is read at call time, never cached, since the
parent writes it after its own settings were read.

Import cost: this module imports only the standard library's ``os`` and ``dataclasses``
and :mod:`tiup.errors`, so the CLI may read it at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from tiup.errors import UsageError

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_ATTEMPTS = 5
DEFAULT_SPEED_LIMIT = 1024.0   # bytes per second
DEFAULT_SPEED_TIME = 30.0      # seconds
DEFAULT_DEADLINE_BASE = 120.0  # seconds
DEFAULT_MAX_BYTES = 8 << 30
DEFAULT_MAX_MEMBERS = 100_000
DEFAULT_WARN_DAYS = 7
DEFAULT_GIVE_UP = 30.0
DEFAULT_PUBLISH_BACKOFF = 2.0

BYTES_ENV, MEMBERS_ENV = "TIUP_MAX_EXTRACT_BYTES", "TIUP_MAX_EXTRACT_MEMBERS"
SYNC_SCRIPT_ENV = "TIUP_MIRROR_SYNC_SCRIPT"
SERVER_CONFIG_ENV = "TIUP_SERVE_CONFIG"


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts, retries, slow-retrieval rule, proxies and CA bundle of HTTP(S) requests.

    Attributes:
        connect_timeout, read_timeout: seconds, None for no timeout.
        attempts: attempts per request (at least 1).
        speed_limit, speed_time, deadline: the slow-retrieval rule
            (:mod:`tiup.transport.speed`); 0 turns a part off.
        inner_proxy: a proxy URL for every scheme (``TIUP_INNER_HTTP_PROXY``), or None.
        proxies: ``(scheme, proxy)`` pairs from the proxy variables (``no`` holds
            ``NO_PROXY``), sorted; see :attr:`proxy_map`.
        ca_bundle: a PEM file or certificate directory, None for the system store.
    """

    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float | None = DEFAULT_READ_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    speed_limit: float = DEFAULT_SPEED_LIMIT
    speed_time: float = DEFAULT_SPEED_TIME
    deadline: float = DEFAULT_DEADLINE_BASE
    inner_proxy: str | None = None
    proxies: tuple[tuple[str, str], ...] = ()
    ca_bundle: str | None = None

    @property
    def proxy_map(self) -> dict[str, str]:
        """``{"http": ..., "https": ..., "all": ..., "no": ...}`` as far as set."""
        return dict(self.proxies)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HttpSettings:
        """The HTTP settings of ``env`` (see the module docstring).

        Raises:
            UsageError: a ``TIUP_HTTP_*`` value is malformed.
        """
        inner = _text(env, "TIUP_INNER_HTTP_PROXY")
        return cls(
            connect_timeout=_seconds(env, "TIUP_HTTP_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT,
                                     off="no timeout"),
            read_timeout=_seconds(env, "TIUP_HTTP_READ_TIMEOUT", DEFAULT_READ_TIMEOUT,
                                  off="no timeout"),
            attempts=_attempts(env, "TIUP_HTTP_RETRIES"),
            speed_limit=_seconds(env, "TIUP_HTTP_SPEED_LIMIT", DEFAULT_SPEED_LIMIT,
                                 unit="bytes per second", off="no minimum speed") or 0.0,
            speed_time=_seconds(env, "TIUP_HTTP_SPEED_TIME", DEFAULT_SPEED_TIME,
                                off="no minimum speed") or 0.0,
            deadline=_seconds(env, "TIUP_HTTP_DEADLINE", DEFAULT_DEADLINE_BASE,
                              off="no deadline") or 0.0,
            inner_proxy=None if inner is None else inner if "://" in inner else f"http://{inner}",
            proxies=tuple(sorted(_proxies(env).items())),
            ca_bundle=_text(env, "TIUP_CA_BUNDLE") or _text(env, "SSL_CERT_FILE"),
        )


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds of one tarball extraction (:mod:`tiup.client.extract`); None: unlimited."""

    max_bytes: int | None = DEFAULT_MAX_BYTES
    max_members: int | None = DEFAULT_MAX_MEMBERS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ExtractLimits:
        """``TIUP_MAX_EXTRACT_BYTES`` / ``TIUP_MAX_EXTRACT_MEMBERS`` (0 or less: no limit).

        Raises:
            UsageError: a value is not an integer.
        """
        return cls(_limit(env, BYTES_ENV, DEFAULT_MAX_BYTES),
                   _limit(env, MEMBERS_ENV, DEFAULT_MAX_MEMBERS))


@dataclass(frozen=True)
class Settings:
    """Everything the library takes from the environment (table in the module docstring).

    ``Settings()`` holds the built-in defaults; :meth:`from_env` reads an environment.
    """

    http: HttpSettings = field(default_factory=HttpSettings)
    extract: ExtractLimits = field(default_factory=ExtractLimits)
    #: warn when trusted metadata expires within this many days (0: never warn)
    expiry_warn_days: int = DEFAULT_WARN_DAYS
    #: seconds without a byte from a failing clone source before the rest is given up
    #: (None: never)
    clone_give_up: float | None = DEFAULT_GIVE_UP
    #: seconds before the first retry of a refused publish (doubling afterwards)
    publish_backoff: float = DEFAULT_PUBLISH_BACKOFF
    #: keep the downloaded tarball next to an installed component
    keep_source_target: bool = False
    #: program run after every mirror commit with a directory of the changed files
    sync_script: str | None = None
    #: tiup-server's data directory (uploads go to its ``packages/``)
    component_data_dir: str | None = None
    #: the PKCS#11 module of ``pkcs11:`` keys whose URI names none (``module-path=``)
    pkcs11_module: str | None = None
    #: how s3:// mirrors address their bucket: ``path``, ``virtual`` or ``auto`` (botocore's
    #: choice; endpoint, region and credentials come the standard AWS way, read by boto3)
    s3_addressing_style: str = "auto"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse and validate every setting of ``env`` at once.

        Raises:
            UsageError: a value is malformed; the message names the variable and the
                hint says what it accepts.
        """
        days = _integer(env, "TIUP_EXPIRY_WARN_DAYS", DEFAULT_WARN_DAYS,
                        hint="a whole number of days (0 = no expiry warnings)")
        backoff = _seconds(env, "TIUP_PUBLISH_BACKOFF", DEFAULT_PUBLISH_BACKOFF,
                           off="retry at once")
        return cls(
            http=HttpSettings.from_env(env),
            extract=ExtractLimits.from_env(env),
            expiry_warn_days=max(0, days),
            clone_give_up=_seconds(env, "TIUP_CLONE_GIVE_UP", DEFAULT_GIVE_UP,
                                   off="never give up"),
            publish_backoff=backoff or 0.0,
            keep_source_target=env.get("TIUP_KEEP_SOURCE_TARGET", "") in ("enable", "true"),
            sync_script=env.get(SYNC_SCRIPT_ENV) or None,
            component_data_dir=env.get("TIUP_COMPONENT_DATA_DIR") or None,
            pkcs11_module=(env.get("TIUP_PKCS11_MODULE") or "").strip() or None,
            s3_addressing_style=_choice(env, "TIUP_S3_ADDRESSING_STYLE", "auto",
                                        ("auto", "path", "virtual")),
        )


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in allowed:
        raise UsageError(f"{name}={env.get(name)!r} is not valid",
                         hint=f"one of: {', '.join(allowed)}")
    return value


_current: Settings | None = None


def current() -> Settings:
    """The process-wide settings: the environment, read on first use and kept.

    Raises:
        UsageError: a value is malformed (raised again on every call until fixed).
    """
    global _current
    if _current is None:
        _current = Settings.from_env(os.environ)
    return _current


def reset_current(settings: Settings | None = None) -> None:
    """Make :func:`current` return ``settings``, or (None) read the environment again
    on its next call. For tests and for processes that change their own environment."""
    global _current
    _current = settings


def hand_over_server_config(blob: str) -> None:
    """Put the server's worker configuration where granian's workers find it
    (:data:`SERVER_CONFIG_ENV`, inherited by the worker processes)."""
    os.environ[SERVER_CONFIG_ENV] = blob


def server_config_blob(env: Mapping[str, str] | None = None) -> str | None:
    """The worker configuration :func:`hand_over_server_config` left, or None.

    Read at call time (not cached): the parent writes it after start-up.
    """
    return (os.environ if env is None else env).get(SERVER_CONFIG_ENV) or None


# -- parsers -----------------------------------------------------------------------------


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _seconds(env: Mapping[str, str], name: str, default: float, *, unit: str = "seconds",
             off: str = "off") -> float | None:
    """A finite number from ``name``; 0 or less: None (the rule is off)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"{name}={raw!r} is not a number of {unit}",
                         hint=f"set {name} to a number of {unit} (0 = {off})")
    return value if value > 0 else None


def _integer(env: Mapping[str, str], name: str, default: int, *, hint: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not an integer",
                         hint=f"set {name} to {hint}") from None


def _attempts(env: Mapping[str, str], name: str) -> int:
    return max(1, _integer(env, name, DEFAULT_ATTEMPTS,
                           hint="a whole number of attempts per request (at least 1)"))


def _limit(env: Mapping[str, str], name: str, default: int) -> int | None:
    raw = env.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not an integer",
                         hint=f"set {name} to a whole number (0 = no limit)") from None
    return value if value > 0 else None


def _proxies(env: Mapping[str, str]) -> dict[str, str]:
    """``urllib.request.getproxies_environment`` over ``env`` (without importing urllib):
    ``<scheme>_proxy`` in either case, lowercase names winning; ``HTTP_PROXY`` is
    dropped in a CGI process (``REQUEST_METHOD`` set), where a client can set it."""
    proxies: dict[str, str] = {}
    for name, value in env.items():
        lower = name.lower()
        if value and lower.endswith("_proxy"):
            proxies[lower[:-6]] = value
    if "REQUEST_METHOD" in env:
        proxies.pop("http", None)
    for name, value in env.items():
        if name.endswith("_proxy"):
            lower = name.lower()
            if value:
                proxies[lower[:-6]] = value
            else:
                proxies.pop(lower[:-6], None)
    return proxies


__all__ = ["ExtractLimits", "HttpSettings", "Settings", "current", "hand_over_server_config",
           "reset_current", "server_config_blob"]
