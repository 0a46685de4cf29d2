"""The downloader against the loopback image host: good images stored by hash, trouble refused."""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import replace

import pytest
from conftest import MAX_BYTES, SLOW_TIMEOUT_S, TROUBLE, good_path
from fake_apis import PIL_FORMATS, FakeApis, Served, image_bytes
from PIL import Image

from lyriscope.dataset_tools.download import (
    Downloader,
    DownloadOptions,
    clean_parts,
    origin,
    sniff_image_type,
)
from lyriscope.dataset_tools.sources.base import Candidate

OPTIONS = DownloadOptions(
    workers=2,
    max_bytes=MAX_BYTES,
    read_timeout_s=SLOW_TIMEOUT_S,
    connect_timeout_s=2.0,
    retries=1,
    backoff_s=0.05,
    max_wait_s=0.2,
    allow_private=True,  # the image host is on loopback
)


def candidate(url: str) -> Candidate:
    return Candidate(source="test", query="q", image_url=url)


@pytest.mark.parametrize("fmt", sorted(PIL_FORMATS))
def test_sniff_names_every_format_pillow_writes(fmt):
    data = image_bytes(3, fmt)
    assert sniff_image_type(data[:32]) == PIL_FORMATS[fmt]
    assert Image.open(io.BytesIO(data)).format == fmt  # the reference agrees on the bytes


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"<!DOCTYPE html>",
        b"%PDF-1.7",
        b"BM",
        b"\x00" * 32,
        b'{"error": 1}',
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
    ],
)
def test_sniff_refuses_what_is_not_an_image(head):
    assert sniff_image_type(head) is None


def test_good_image_is_stored_under_its_hash_with_the_right_extension(fake, tmp_path):
    downloader = Downloader(OPTIONS)
    result = downloader.fetch(candidate(fake.url + good_path(1)), tmp_path)  # a PNG
    body = fake.bodies[1]
    assert result.ok
    assert result.path == tmp_path / (hashlib.sha256(body).hexdigest() + ".png")
    assert result.path.read_bytes() == body
    assert (result.width, result.height) == (48, 32)
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]  # no .part left


@pytest.mark.parametrize("path, reason", [(p, r) for p, r in TROUBLE.items() if r != "duplicate"])
def test_trouble_is_refused_for_the_right_reason(fake, tmp_path, path, reason):
    started = time.monotonic()
    result = Downloader(OPTIONS).fetch(candidate(fake.url + path), tmp_path)
    assert result.reason == reason, result.detail
    assert time.monotonic() - started < 3.0  # capped waits, bounded timeouts: nothing hangs
    stored = [p for p in tmp_path.iterdir()]
    assert (len(stored) == 1) == (reason is None)
    assert not list(tmp_path.glob(".dl-*"))


def test_retry_after_is_honoured_but_capped(fake, tmp_path):
    started = time.monotonic()
    result = Downloader(OPTIONS).fetch(candidate(fake.url + "/img/limited"), tmp_path)
    assert result.ok
    assert result.path.read_bytes() == fake.bodies[6]
    assert fake.hits("/img/limited") == 2
    assert time.monotonic() - started < 2.0  # the server asked for 30 s; the cap is 0.2 s


def test_redirect_is_followed_and_the_image_named_from_its_content(fake, tmp_path):
    result = Downloader(OPTIONS).fetch(candidate(fake.url + "/img/moved"), tmp_path)
    assert result.ok and result.path.read_bytes() == fake.bodies[7]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/a.jpg",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
    ],
)
def test_non_http_urls_are_refused_without_fetching(tmp_path, url):
    result = Downloader(OPTIONS).fetch(candidate(url), tmp_path)
    assert result.reason == "bad_url" and result.permanent


def test_refusals_say_whether_a_later_run_should_try_again(fake, tmp_path):
    downloader = Downloader(OPTIONS)
    assert downloader.fetch(candidate(fake.url + "/img/gone"), tmp_path).permanent
    assert downloader.fetch(candidate(fake.url + "/img/page.html"), tmp_path).permanent
    assert not downloader.fetch(candidate(fake.url + "/img/slow"), tmp_path).permanent


def test_local_file_is_copied_and_checked(tmp_path):
    source_dir, out = tmp_path / "mine", tmp_path / "out"
    source_dir.mkdir()
    (source_dir / "a.jpeg").write_bytes(image_bytes(1, "JPEG"))
    (source_dir / "b.jpg").write_text("not really", encoding="utf-8")
    downloader = Downloader(OPTIONS)
    good = downloader.fetch(
        Candidate("folder", "", (source_dir / "a.jpeg").as_uri(), local_path=source_dir / "a.jpeg"),
        out,
    )
    bad = downloader.fetch(
        Candidate("folder", "", (source_dir / "b.jpg").as_uri(), local_path=source_dir / "b.jpg"),
        out,
    )
    assert good.ok and good.path.suffix == ".jpg"
    assert bad.reason == "not_image"


def test_stop_makes_fetches_give_up(fake, tmp_path):
    downloader = Downloader(OPTIONS)
    downloader.stop.set()
    result = downloader.fetch(candidate(fake.url + good_path(2)), tmp_path)
    assert not result.ok and not result.permanent
    assert not list(tmp_path.iterdir())


def test_clean_parts_removes_leftovers_only(tmp_path):
    (tmp_path / ".dl-abc.part").write_bytes(b"half")
    (tmp_path / "keep.png").write_bytes(b"x")
    assert clean_parts(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_body_cut_short_is_refused_and_tried_again_next_time(fake, tmp_path):
    fake.add_file("/img/cut", Served(fake.bodies[2], kind="truncated"))
    result = Downloader(OPTIONS).fetch(candidate(fake.url + "/img/cut"), tmp_path)
    assert not result.ok and not result.permanent
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("url", ["http://", "http://[::1", "https:///nohost.jpg"])
def test_malformed_urls_are_refused_for_good(tmp_path, url):
    result = Downloader(OPTIONS).fetch(candidate(url), tmp_path)
    assert result.reason == "bad_url" and result.permanent


GUARDED = DownloadOptions(
    connect_timeout_s=2.0, read_timeout_s=5.0, retries=0, max_wait_s=0.2, max_total_s=1.0
)


def test_a_redirect_to_another_local_service_is_refused_and_never_reached(fake, tmp_path):
    with FakeApis() as internal:  # another port on this machine: an internal service
        secret = internal.add_file("/admin.png", Served(image_bytes(9, "PNG"), "image/png"))
        hop = fake.add_file("/img/hop", Served(kind="redirect", target=secret))
        # The configured endpoint's own origin is allowed; the redirect's target is not.
        options = replace(GUARDED, allowed_origins=frozenset({origin(fake.url)}))
        got = Downloader(options).fetch(candidate(hop), tmp_path)
        assert (got.reason, got.permanent) == ("bad_url", True)
        assert "private address 127.0.0.1" in got.detail
        assert internal.hits("/admin.png") == 0
        allowed = Downloader(replace(GUARDED, allow_private=True)).fetch(candidate(hop), tmp_path)
        assert allowed.ok  # the explicit opt-in (collect --allow-private-addresses)


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data", "http://localhost:9/x.png", "http://10.1.2.3/"],
)
def test_link_local_loopback_and_private_hosts_are_refused_before_any_connection(tmp_path, url):
    began = time.monotonic()
    got = Downloader(GUARDED).fetch(candidate(url), tmp_path)
    assert got.reason == "bad_url" and "private address" in got.detail
    assert time.monotonic() - began < 0.5  # refused, not timed out


def test_a_trickling_server_is_cut_at_the_total_time_limit(fake, tmp_path):
    url = fake.add_file(
        "/img/trickle.png", Served(image_bytes(1, "PNG"), "image/png", "trickle", delay_s=0.1)
    )
    began = time.monotonic()
    got = Downloader(replace(GUARDED, allow_private=True)).fetch(candidate(url), tmp_path)
    assert got.reason == "timeout" and "took over 1 s" in got.detail
    assert time.monotonic() - began < 3.0  # each byte came well within the read timeout
    assert not list(tmp_path.iterdir())  # no partial file left
