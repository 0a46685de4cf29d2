"""Every image source against a loopback imitation of its API: paging, credit fields, keys, limits."""

from __future__ import annotations

import time

import pytest
from fake_apis import FakeApis, Served

from lyriscope.dataset_tools.sources.base import (
    ApiClient,
    Candidate,
    RateLimitReached,
    SourceError,
)
from lyriscope.dataset_tools.sources.registry import default_source_names, make_source

KEYS = {
    "unsplash": "unsplash-key-7f3a9",
    "pexels": "pexels-key-11b2c",
    "pixabay": "pixabay-key-5d8e",
}
KEY_VARS = {
    "unsplash": "UNSPLASH_ACCESS_KEY",
    "pexels": "PEXELS_API_KEY",
    "pixabay": "PIXABAY_API_KEY",
}


@pytest.fixture
def api(monkeypatch, point_sources_at):
    """A fake API server with a long catalogue per source and keys set in the environment."""
    with FakeApis() as server:
        point_sources_at(server)
        for name, key in KEYS.items():
            monkeypatch.setenv(KEY_VARS[name], key)
        server.state.keys = dict(KEYS)
        server.state.catalogue = {
            name: [f"/img/{name}-{i}.jpg" for i in range(65)]
            for name in ("openverse", "wikimedia", "unsplash", "pexels", "pixabay")
        }
        yield server


def source(name: str, **kwargs):
    return make_source(name, min_interval_s=0.0, max_wait_s=0.2, **kwargs)


@pytest.mark.parametrize(
    "name, page_size",
    [("openverse", 20), ("wikimedia", 50), ("unsplash", 30), ("pexels", 80), ("pixabay", 40)],
)
def test_each_source_pages_through_its_api_up_to_the_limit(api, name, page_size):
    found = list(source(name).search("ray of light", limit=40))
    assert len(found) == 40
    assert len({c.image_url for c in found}) == 40
    assert all(c.image_url.startswith(api.url + f"/img/{name}-") for c in found)
    assert all(c.source == name and c.query == "ray of light" for c in found)
    assert all(c.page_url and c.creator and c.license and c.attribution for c in found)
    assert len(api.state.api_requests) == -(-40 // page_size)  # pages asked, no more


@pytest.mark.parametrize("name", sorted(KEY_VARS) + ["openverse", "wikimedia"])
def test_a_zero_limit_asks_the_api_nothing(api, name):
    assert list(source(name).search("light", limit=0)) == []
    assert api.state.api_requests == []


# Seconds between requests each API publishes (see the sources' docstrings).
PUBLISHED_PACE_S = {
    "openverse": 3.0,
    "wikimedia": 1.0,
    "unsplash": 1.0,
    "pexels": 1.0,
    "pixabay": 0.6,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PACE_S))
def test_each_api_keeps_its_published_pace_unless_told(api, name):
    assert make_source(name).client.min_interval_s == PUBLISHED_PACE_S[name]
    assert make_source(name, min_interval_s=0.25).client.min_interval_s == 0.25


def test_openverse_keeps_its_credit_text_and_licence(api):
    first = next(source("openverse").search("light", limit=1))
    assert first.license == "CC BY-SA 4.0"
    assert first.license_url == "https://creativecommons.org/licenses/by-sa/4.0/"
    assert first.attribution.startswith('"Picture /img/openverse-0.jpg" by Creator 0')
    assert "page_size=20" in api.state.api_requests[0]


# The one licence each stock-photo API puts its images under, and the credit its guidelines ask.
ONE_LICENCE = {
    "unsplash": (
        "Unsplash License",
        "https://unsplash.com/license",
        "Photo by Photographer 0 on Unsplash",
    ),
    "pexels": ("Pexels License", "https://www.pexels.com/license/", "Photo by Pex 0 on Pexels"),
    "pixabay": (
        "Pixabay Content License",
        "https://pixabay.com/service/license-summary/",
        "Image by pixuser0 from Pixabay",
    ),
}


@pytest.mark.parametrize("name", sorted(ONE_LICENCE))
def test_stock_photo_sources_credit_as_their_guidelines_ask(api, name):
    first = next(source(name).search("light", limit=1))
    assert (first.license, first.license_url, first.attribution) == ONE_LICENCE[name]
    assert first.creator in first.attribution


def test_openverse_stops_at_the_last_page(api):
    api.state.catalogue["openverse"] = api.state.catalogue["openverse"][:25]
    assert len(list(source("openverse").search("light", limit=100))) == 25
    assert len(api.state.api_requests) == 2


def test_wikimedia_skips_non_raster_files_and_reads_html_credit(api, monkeypatch):
    monkeypatch.setenv("LYRISCOPE_CONTACT", "vj@example.org")
    api.state.catalogue["wikimedia"] = ["/img/a.jpg", "/img/diagram.svg", "/img/b.jpg"]
    found = list(source("wikimedia").search("light", limit=10))
    assert [c.image_url for c in found] == [api.url + "/img/a.jpg", api.url + "/img/b.jpg"]
    assert found[0].creator == "Artist & 0"  # HTML link and entity reduced to text
    assert found[0].license == "CC BY 4.0"
    assert found[0].page_url.startswith("https://commons.example/wiki/File:")
    assert (found[0].width, found[0].height) == (48, 32)  # the thumbnail's, not the original's
    assert "filetype%3Abitmap" in api.state.api_requests[0]  # raster files only
    agent = api.state.agents[0]  # descriptive User-Agent with contact (API etiquette)
    assert agent.startswith("lyriscope/") and "vj@example.org" in agent


def test_wikimedia_downloads_one_at_a_time():
    assert source("wikimedia").download_slots == 1


@pytest.mark.parametrize("name", sorted(KEYS))
def test_keyed_source_without_key_says_which_variable(monkeypatch, name):
    monkeypatch.delenv(KEY_VARS[name], raising=False)
    with pytest.raises(SourceError, match=KEY_VARS[name]):
        source(name)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_wrong_key_is_refused_without_showing_it(api, monkeypatch, name):
    monkeypatch.setenv(KEY_VARS[name], "wrong-secret-42")
    with pytest.raises(SourceError, match=name) as info:
        list(source(name).search("light", limit=5))
    assert "wrong-secret-42" not in str(info.value)
    assert "wrong-secret-42" not in repr(source(name))


def test_unsplash_reports_each_download_with_the_key(api):
    unsplash = source("unsplash")
    found = list(unsplash.search("light", limit=2))
    for candidate in found:
        unsplash.on_downloaded(candidate)
    assert dict(api.state.tracked) == {"u0": 1, "u1": 1}


def test_unsplash_sends_no_key_to_a_foreign_tracking_host(api):
    unsplash = source("unsplash")
    foreign = Candidate("unsplash", "q", "http://x/y.jpg", track_url="http://127.0.0.2:9/t")
    unsplash.on_downloaded(foreign)  # must not raise, must not call out
    assert unsplash.client.requests_sent == 0


def test_rate_limit_header_stops_the_source(api):
    api.state.remaining["pexels"] = 1  # the first answer says 0 requests remain
    api.state.catalogue["pexels"] = [f"/img/p-{i}.jpg" for i in range(100)]
    pexels = source("pexels")
    results = pexels.search("light", limit=200)
    assert len([next(results) for _ in range(80)]) == 80  # the first page is still used
    with pytest.raises(RateLimitReached):
        next(results)
    assert len(api.state.api_requests) == 1


def test_pixabay_answers_are_cached_without_the_key(api, tmp_path):
    first = list(source("pixabay", cache_dir=tmp_path).search("light", limit=5))
    again = list(source("pixabay", cache_dir=tmp_path).search("light", limit=5))
    assert first == again
    assert len(api.state.api_requests) == 1
    cached = list(tmp_path.iterdir())
    assert cached and all(KEYS["pixabay"] not in p.read_text() + p.name for p in cached)


def test_api_client_retries_429_after_a_capped_wait(api):
    api.add_file("/busy.json", Served(b'{"ok": true}', "application/json", kind="429-once"))
    client = ApiClient(name="test", min_interval_s=0.0, max_wait_s=0.1)
    started = time.monotonic()
    assert client.get_json(api.url + "/busy.json") == {"ok": True}
    assert time.monotonic() - started < 1.0  # Retry-After said 30 s
    assert api.hits("/busy.json") == 2


def test_api_client_paces_its_requests(api):
    client = ApiClient(name="test", min_interval_s=0.15)
    api.add_file("/a.json", Served(b"{}", "application/json"))
    started = time.monotonic()
    for _ in range(3):
        client.get_json(api.url + "/a.json")
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("served", "message"),
    [
        (Served(b'{"results": []}', "application/json", "trickle", delay_s=0.1), "took over 1 s"),
        (Served(b"[" * 100_000 + b"]" * 100_000, "application/json"), "no usable JSON"),
        (Served(b"x" * (3 * 2**20), "application/json"), "answered more than 2 MiB"),
    ],
)
def test_a_hostile_api_answer_is_one_sentence_in_bounded_time(api, served, message):
    api.add_file("/hostile.json", served)
    client = ApiClient(name="test", min_interval_s=0.0, total_s=1.0, max_answer_bytes=2 * 2**20)
    started = time.monotonic()
    with pytest.raises(SourceError, match=message):
        client.get_json(api.url + "/hostile.json")
    assert time.monotonic() - started < 3.0


def test_folder_source_offers_its_image_files(tmp_path):
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "a.JPG").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    found = list(make_source(f"folder:{tmp_path}").search("", limit=10))
    assert [c.local_path.name for c in found] == ["a.JPG", "b.png"]
    assert all(c.image_url.startswith("file://") for c in found)


def test_url_list_reads_urls_credit_and_skips_comments(tmp_path):
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "# my picks\nhttp://a.example/1.jpg\n\n"
        "https://b.example/2.png\thttps://b.example/page\tAnn\tCC0 1.0\n",
        encoding="utf-8",
    )
    found = list(make_source(f"urls:{listing}").search("", limit=10))
    assert [c.image_url for c in found] == ["http://a.example/1.jpg", "https://b.example/2.png"]
    assert (found[1].page_url, found[1].creator, found[1].license) == (
        "https://b.example/page",
        "Ann",
        "CC0 1.0",
    )


@pytest.mark.parametrize(
    "spec", ["flickr", "folder:/no/such/dir", "urls:/no/such/file", "openverse:extra"]
)
def test_bad_source_names_are_explained(spec):
    with pytest.raises(SourceError, match="folder|urls|expected one of"):
        make_source(spec)


def test_default_sources_are_keyless_plus_those_with_keys(monkeypatch):
    for var in KEY_VARS.values():
        monkeypatch.delenv(var, raising=False)
    assert default_source_names() == ["openverse", "wikimedia"]
    monkeypatch.setenv("PEXELS_API_KEY", "k")
    assert default_source_names() == ["openverse", "wikimedia", "pexels"]
