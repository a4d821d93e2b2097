"""The names rule set for object storage: s3://BUCKET/PREFIX from the command line and the
keys of a bucket listing (hostile input, validated once where it enters)."""

from __future__ import annotations

import pytest

from tiup.errors import InvalidNameError
from tiup.manifest.names import object_name, s3_address


@pytest.mark.parametrize(("address", "expected"), [
    ("s3://my-bucket", ("my-bucket", "")),
    ("s3://my-bucket/", ("my-bucket", "")),
    ("s3://my.bucket-1/tiup/prod/", ("my.bucket-1", "tiup/prod")),
    ("s3://abc/a_b+c=d.e-f", ("abc", "a_b+c=d.e-f")),
])
def test_good_addresses(address: str, expected: tuple[str, str]) -> None:
    assert s3_address(address) == expected


@pytest.mark.parametrize("address", [
    "s3://", "s3://ab", "s3://Upper", "s3://under_score/x", "s3://-lead/x", "s3://a..b/x",
    "s3://" + "a" * 64, "s3://bucket/../etc", "s3://bucket/a/../b", "s3://bucket/.hidden",
    "s3://bucket/a//b/../c", "s3://bucket/sp ace", "s3://bucket/nul\0", "s3://bucket/-x",
    "http://bucket/x", "/tmp/x", "s3://bucket/a\\b",
])
def test_hostile_addresses(address: str) -> None:
    with pytest.raises(InvalidNameError):
        s3_address(address)


@pytest.mark.parametrize("name", ["timestamp.json", "12.hello.json",
                                  "hello-v1.0.0-linux-amd64.tar.gz", ".upload/s-1/x.tar.gz"])
def test_good_object_names(name: str) -> None:
    assert object_name(name) == name


@pytest.mark.parametrize("name", ["", "/abs", "a//b", "../x", "a/../b", "./a", "a/.", "sp ace",
                                  "new\nline", "a" * 2000, "a/b/c/d/e/f/g/h/i", "back\\slash"])
def test_hostile_object_names(name: str) -> None:
    with pytest.raises(InvalidNameError):
        object_name(name)
