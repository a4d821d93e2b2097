"""tiup.settings: every variable × good and bad values, defaults, the process-wide cache,
and the rule that nothing else in ``src/tiup`` reads the environment."""

from __future__ import annotations

import ast
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tiup import settings
from tiup.errors import UsageError
from tiup.settings import ExtractLimits, HttpSettings, Settings

SRC = Path(__file__).resolve().parents[2] / "src" / "tiup"
ENV = {"TIUP_MIRRORS": "", "TIUP_TEST_NOW": "2030-01-01T00:00:00Z"}


def field(s: Settings, path: str) -> Any:
    value: Any = s
    for part in path.split("."):
        value = getattr(value, part)
    return value


#: (variable, value, field, expected)
GOOD = [
    ("TIUP_HTTP_CONNECT_TIMEOUT", "3.5", "http.connect_timeout", 3.5),
    ("TIUP_HTTP_CONNECT_TIMEOUT", " 7 ", "http.connect_timeout", 7.0),
    ("TIUP_HTTP_CONNECT_TIMEOUT", "0", "http.connect_timeout", None),
    ("TIUP_HTTP_CONNECT_TIMEOUT", "-1", "http.connect_timeout", None),
    ("TIUP_HTTP_CONNECT_TIMEOUT", "", "http.connect_timeout", 10.0),
    ("TIUP_HTTP_READ_TIMEOUT", "90", "http.read_timeout", 90.0),
    ("TIUP_HTTP_READ_TIMEOUT", "0", "http.read_timeout", None),
    ("TIUP_HTTP_RETRIES", "2", "http.attempts", 2),
    ("TIUP_HTTP_RETRIES", "0", "http.attempts", 1),
    ("TIUP_HTTP_RETRIES", "-3", "http.attempts", 1),
    ("TIUP_HTTP_SPEED_LIMIT", "100", "http.speed_limit", 100.0),
    ("TIUP_HTTP_SPEED_LIMIT", "0", "http.speed_limit", 0.0),
    ("TIUP_HTTP_SPEED_TIME", "1.5", "http.speed_time", 1.5),
    ("TIUP_HTTP_SPEED_TIME", "0", "http.speed_time", 0.0),
    ("TIUP_HTTP_DEADLINE", "600", "http.deadline", 600.0),
    ("TIUP_HTTP_DEADLINE", "0", "http.deadline", 0.0),
    ("TIUP_INNER_HTTP_PROXY", "10.0.0.1:3128", "http.inner_proxy", "http://10.0.0.1:3128"),
    ("TIUP_INNER_HTTP_PROXY", "https://p:3128", "http.inner_proxy", "https://p:3128"),
    ("TIUP_INNER_HTTP_PROXY", "  ", "http.inner_proxy", None),
    ("TIUP_CA_BUNDLE", "/etc/ca.pem", "http.ca_bundle", "/etc/ca.pem"),
    ("SSL_CERT_FILE", "/etc/ssl.pem", "http.ca_bundle", "/etc/ssl.pem"),
    ("TIUP_MAX_EXTRACT_BYTES", "1_000", "extract.max_bytes", 1000),
    ("TIUP_MAX_EXTRACT_BYTES", "0", "extract.max_bytes", None),
    ("TIUP_MAX_EXTRACT_MEMBERS", "50", "extract.max_members", 50),
    ("TIUP_MAX_EXTRACT_MEMBERS", "-1", "extract.max_members", None),
    ("TIUP_EXPIRY_WARN_DAYS", "14", "expiry_warn_days", 14),
    ("TIUP_EXPIRY_WARN_DAYS", " 14", "expiry_warn_days", 14),
    ("TIUP_EXPIRY_WARN_DAYS", "0", "expiry_warn_days", 0),
    ("TIUP_EXPIRY_WARN_DAYS", "-1", "expiry_warn_days", 0),
    ("TIUP_CLONE_GIVE_UP", "0.5", "clone_give_up", 0.5),
    ("TIUP_CLONE_GIVE_UP", "0", "clone_give_up", None),
    ("TIUP_PUBLISH_BACKOFF", "0.01", "publish_backoff", 0.01),
    ("TIUP_PUBLISH_BACKOFF", "-1", "publish_backoff", 0.0),
    ("TIUP_KEEP_SOURCE_TARGET", "enable", "keep_source_target", True),
    ("TIUP_KEEP_SOURCE_TARGET", "true", "keep_source_target", True),
    ("TIUP_KEEP_SOURCE_TARGET", "1", "keep_source_target", False),  # as TiUP: no error
    ("TIUP_KEEP_SOURCE_TARGET", "disable", "keep_source_target", False),
    ("TIUP_MIRROR_SYNC_SCRIPT", "/usr/local/bin/sync", "sync_script", "/usr/local/bin/sync"),
    ("TIUP_MIRROR_SYNC_SCRIPT", "", "sync_script", None),
    ("TIUP_COMPONENT_DATA_DIR", "/data/server", "component_data_dir", "/data/server"),
]

#: (variable, value, what the hint says is accepted)
BAD = [
    ("TIUP_HTTP_CONNECT_TIMEOUT", "soon", "number of seconds"),
    ("TIUP_HTTP_CONNECT_TIMEOUT", "inf", "number of seconds"),
    ("TIUP_HTTP_READ_TIMEOUT", "nan", "number of seconds"),
    ("TIUP_HTTP_RETRIES", "lots", "whole number of attempts"),
    ("TIUP_HTTP_RETRIES", "2.5", "whole number of attempts"),
    ("TIUP_HTTP_SPEED_LIMIT", "fast", "number of bytes per second"),
    ("TIUP_HTTP_SPEED_LIMIT", "-inf", "number of bytes per second"),
    ("TIUP_HTTP_SPEED_TIME", "1s", "number of seconds"),
    ("TIUP_HTTP_DEADLINE", "2m", "number of seconds"),
    ("TIUP_MAX_EXTRACT_BYTES", "lots", "whole number"),
    ("TIUP_MAX_EXTRACT_BYTES", "8GiB", "whole number"),
    ("TIUP_MAX_EXTRACT_MEMBERS", "1e5", "whole number"),
    ("TIUP_EXPIRY_WARN_DAYS", "a week", "whole number of days"),
    ("TIUP_CLONE_GIVE_UP", "never", "number of seconds"),
    ("TIUP_PUBLISH_BACKOFF", "slow", "number of seconds"),
]


@pytest.mark.parametrize(("name", "value", "path", "expected"), GOOD,
                         ids=[f"{n}={v!r}" for n, v, _p, _e in GOOD])
def test_good_values(name: str, value: str, path: str, expected: object) -> None:
    assert field(Settings.from_env({name: value}), path) == expected


@pytest.mark.parametrize(("name", "value", "accepted"), BAD,
                         ids=[f"{n}={v!r}" for n, v, _a in BAD])
def test_bad_values_are_usage_errors_naming_the_variable(name: str, value: str,
                                                         accepted: str) -> None:
    with pytest.raises(UsageError) as err:
        Settings.from_env({name: value})
    assert err.value.exit_code == 2
    assert err.value.message.startswith(f"{name}=")
    assert "\n" not in err.value.message
    assert err.value.hint is not None and name in err.value.hint
    assert accepted in err.value.hint


def test_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    s = Settings()
    assert s.http == HttpSettings(connect_timeout=10.0, read_timeout=60.0, attempts=5,
                                  speed_limit=1024.0, speed_time=30.0, deadline=120.0,
                                  inner_proxy=None, proxies=(), ca_bundle=None)
    assert s.extract == ExtractLimits(8 << 30, 100_000)
    assert (s.expiry_warn_days, s.clone_give_up, s.publish_backoff) == (7, 30.0, 2.0)
    assert (s.keep_source_target, s.sync_script, s.component_data_dir) == (False, None, None)


def test_ca_bundle_prefers_tiup_ca_bundle() -> None:
    env = {"TIUP_CA_BUNDLE": "/a.pem", "SSL_CERT_FILE": "/b.pem"}
    assert Settings.from_env(env).http.ca_bundle == "/a.pem"
    assert Settings.from_env({**env, "TIUP_CA_BUNDLE": " "}).http.ca_bundle == "/b.pem"


PROXY_ENVS = [
    {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2"},
    {"HTTPS_PROXY": "p:3", "NO_PROXY": "example.com,127.0.0.1", "ALL_PROXY": "socks5://s:4"},
    {"HTTP_PROXY": "http://upper:1", "http_proxy": ""},  # an empty lowercase one unsets
    {"HTTP_PROXY": "http://cgi:1", "REQUEST_METHOD": "GET"},  # CGI: HTTP_PROXY ignored
    {"http_proxy": "http://cgi:1", "REQUEST_METHOD": "GET"},
    {"PATH": "/bin", "no_proxy": "*"},
]


@pytest.mark.parametrize("env", PROXY_ENVS)
def test_proxies_read_as_urllib_reads_them(env: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", dict(env))
    expected = urllib.request.getproxies_environment()
    monkeypatch.undo()
    assert Settings.from_env(env).http.proxy_map == expected


def test_current_is_read_once_and_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    settings.reset_current()
    monkeypatch.setenv("TIUP_HTTP_RETRIES", "3")
    first = settings.current()
    assert first.http.attempts == 3
    monkeypatch.setenv("TIUP_HTTP_RETRIES", "4")
    assert settings.current() is first  # cached: read once per process
    settings.reset_current()
    assert settings.current().http.attempts == 4
    mine = Settings(expiry_warn_days=0)
    settings.reset_current(mine)
    assert settings.current() is mine


def test_current_raises_until_the_environment_is_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    settings.reset_current()
    monkeypatch.setenv("TIUP_EXPIRY_WARN_DAYS", "soon")
    for _ in range(2):
        with pytest.raises(UsageError, match="TIUP_EXPIRY_WARN_DAYS='soon'"):
            settings.current()
    monkeypatch.setenv("TIUP_EXPIRY_WARN_DAYS", "3")
    assert settings.current().expiry_warn_days == 3


def test_server_config_hand_over(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiup.server.config import ServerConfig

    monkeypatch.setenv(settings.SERVER_CONFIG_ENV, "")  # restored after the test
    assert settings.server_config_blob() is None
    with pytest.raises(RuntimeError, match="TIUP_SERVE_CONFIG is not set"):
        ServerConfig.from_env()
    config = ServerConfig(mirror="/srv/mirror", upstream="https://up")
    config.hand_over()
    assert settings.server_config_blob() == config.to_env()
    assert ServerConfig.from_env() == config
    assert settings.server_config_blob({}) is None


# -- nothing else reads the environment ----------------------------------------------------

#: modules allowed to read the environment (DESIGN.md, issue 10)
ENV_READERS = ("tiup.settings", "tiup.clock", "tiup.client.profile", "tiup.cli")
#: attributes whose use reads (or writes) the process environment
ENV_ATTRS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv",
             "getproxies", "getproxies_environment"}


def env_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """``os.environ``, ``os.getenv``, ``x.environ.get``, ``from os import environ``,
    urllib's environment proxy readers: (line, what) for each."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ENV_ATTRS:
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "urllib.request"):
            found += [(node.lineno, f"from {node.module} import {a.name}")
                      for a in node.names if a.name in ENV_ATTRS]
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv"):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "proxy_bypass_environment" and len(node.args) < 2:
            found.append((node.lineno, "proxy_bypass_environment without proxies"))
    return found


def src_modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


def test_the_scan_finds_each_kind_of_read() -> None:
    code = ("import os\nfrom os import environ\nimport urllib.request as u\n"
            "a = os.environ.get('X')\nb = os.getenv('Y')\nc = environ['Z']\n"
            "d = u.getproxies_environment()\ne = u.proxy_bypass_environment('h')\n"
            "f = u.proxy_bypass_environment('h', {})\n")
    lines = sorted({line for line, _what in env_reads(ast.parse(code))})
    assert lines == [2, 4, 5, 6, 7, 8]


def test_only_allowed_modules_read_the_environment() -> None:
    offenders = [f"{module}:{line}: {what}"
                 for module, path in src_modules() if not module.startswith(ENV_READERS)
                 for line, what in env_reads(ast.parse(path.read_text()))]
    assert offenders == [], "read the value from tiup.settings instead:\n" + "\n".join(offenders)
