"""Collect images for each lyric line of a set from web sources, a folder or a URL list.

Images land in sets/NAME/images/line-NN/ as <sha256><ext>, each recorded in that folder's
manifest.jsonl; sets/NAME/images/ATTRIBUTION.md credits them all. Running it again resumes:
URLs already stored or refused for good are skipped, so nothing is fetched twice.
Each line's search terms are its queries alone and each query with each tag
("Ray of light", "Ray of light photography", ...).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from lyriscope.dataset_tools.download import Downloader, DownloadOptions, Fetched, clean_parts
from lyriscope.dataset_tools.manifest import LineManifest, line_folder, write_attribution
from lyriscope.dataset_tools.queries import search_terms
from lyriscope.dataset_tools.sources.base import Candidate, RedactSecrets, Source, SourceError
from lyriscope.setmodel import SongSet

log = logging.getLogger(__name__)

DEFAULT_PER_QUERY = 30  # candidates asked of each source per search term
SHOWN_REASONS: tuple[str, ...] = ("too_large", "not_image", "http_error", "timeout", "duplicate")


@dataclass
class CollectReport:
    """Counts of one collect run (all lines)."""

    stored: int = 0  # new images written
    skipped: int = 0  # candidates already stored or refused by an earlier run
    refused: Counter = field(default_factory=Counter)  # reason -> count
    notes: list[str] = field(default_factory=list)  # sources that stopped, and why
    empty_lines: list[int] = field(default_factory=list)  # 0-based lines left with no image

    def summary(self) -> str:
        reasons = list(SHOWN_REASONS) + sorted(set(self.refused) - set(SHOWN_REASONS))
        refused = ", ".join(f"{r.replace('_', ' ')} {self.refused.get(r, 0)}" for r in reasons)
        return (
            f"stored {self.stored} new images, skipped {self.skipped} known URLs; "
            f"refused: {refused}"
        )


def collect(
    song_set: SongSet,
    sources: Sequence[Source],
    *,
    lines: Sequence[int] | None = None,  # 0-based line indices; None = every line
    line_sources: Mapping[int, Sequence[Source]] | None = None,  # a line's own, replacing sources
    per_query: int = DEFAULT_PER_QUERY,  # candidates asked of each source per search term
    options: DownloadOptions | None = None,  # None = defaults
    progress: bool = False,  # show a tqdm bar per line
    on_image: Callable[[dict], None] | None = None,  # called after each stored record
) -> CollectReport:
    """Collect images for `lines` of `song_set` from `sources`; resumable, appends as it goes.

    Writes images/line-NN/{<sha256><ext>, manifest.jsonl, failed.jsonl} and images/ATTRIBUTION.md.
    """

    options = options or DownloadOptions()
    images_dir = song_set.root / "images"
    report = CollectReport()
    downloader = Downloader(options)
    disabled: set[int] = set()  # id() of the sources that failed: skipped from then on
    try:
        for index in range(len(song_set.lines)) if lines is None else lines:
            line = song_set.lines[index]
            terms = search_terms(line.queries, line.tags)
            folder = line_folder(images_dir, index)
            _collect_line(
                folder,
                terms,
                (line_sources or {}).get(index, sources),
                downloader,
                per_query=per_query,
                report=report,
                disabled=disabled,
                progress=progress,
                on_image=on_image,
            )
            if not LineManifest(folder).records:
                report.empty_lines.append(index)
    finally:
        downloader.close()
        if images_dir.is_dir():
            write_attribution(images_dir, title=song_set.song.title)
    return report


def _collect_line(
    folder: Path,
    terms: Sequence[str],
    sources: Sequence[Source],
    downloader: Downloader,
    *,
    per_query: int,
    report: CollectReport,
    disabled: set[int],
    progress: bool,
    on_image: Callable[[dict], None] | None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    clean_parts(folder)
    slots = {s.name: threading.Semaphore(s.download_slots) for s in sources if s.download_slots}
    by_name = {s.name: s for s in sources}

    def fetch(candidate: Candidate) -> Fetched:
        slot = slots.get(candidate.source)
        if slot is None:
            return downloader.fetch(candidate, folder)
        with slot:
            return downloader.fetch(candidate, folder)

    bar = tqdm(desc=folder.name, unit="img", disable=not progress, leave=True)
    # Results are recorded in the order candidates were found, whatever order downloads
    # finish in: the same search gives the same manifest, and of two identical files the
    # first found is kept and the later one counted as a duplicate.
    queue: deque[Future] = deque()
    window = 2 * downloader.options.workers
    pool = ThreadPoolExecutor(max_workers=downloader.options.workers, thread_name_prefix="collect")
    with LineManifest(folder) as manifest:

        def settle_head(*, hook: bool) -> None:
            fetched = queue.popleft().result()
            _record(fetched, manifest, by_name, report, bar, on_image if hook else None)

        seen: set[str] = set()
        try:
            for candidate in _candidates(terms, sources, per_query, report, disabled):
                while queue and queue[0].done():  # record finished downloads right away
                    settle_head(hook=True)
                url = candidate.image_url
                if url in seen:
                    continue
                seen.add(url)
                if manifest.known(url):
                    report.skipped += 1
                    continue
                queue.append(pool.submit(fetch, candidate))
                while queue and (queue[0].done() or len(queue) >= window):
                    settle_head(hook=True)
            while queue:
                settle_head(hook=True)
        except BaseException:
            # Stopped (Ctrl-C, an error): abort the downloads in flight, keep what finished.
            downloader.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for future in queue:
                if future.done() and not future.cancelled() and future.exception() is None:
                    _record(future.result(), manifest, by_name, report, bar, None)
            raise
        finally:
            pool.shutdown(wait=True)
            bar.close()


def _candidates(
    terms: Sequence[str],
    sources: Sequence[Source],
    per_query: int,
    report: CollectReport,
    disabled: set[int],
) -> Iterator[Candidate]:
    for source in sources:
        for term in terms if source.uses_queries else [""]:
            if id(source) in disabled:
                break
            limit = per_query if source.uses_queries else 10**9
            try:
                yield from source.search(term, limit=limit)
            except SourceError as exc:
                problem = str(exc)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # The API changed its answer's shape; say so instead of crashing the run.
                problem = (
                    f"{source.name}: the answer had an unexpected shape "
                    f"({type(exc).__name__}: {exc})"
                )
            else:
                continue
            disabled.add(id(source))
            report.notes.append(f"{problem} (skipped {source.name} for the rest of this run)")
            log.warning("%s", problem)


def _record(
    fetched: Fetched,
    manifest: LineManifest,
    by_name: dict[str, Source],
    report: CollectReport,
    bar,
    on_image: Callable[[dict], None] | None,
) -> None:
    candidate = fetched.candidate
    if fetched.ok and fetched.sha256 in manifest.hashes:
        report.refused["duplicate"] += 1
        manifest.add_failure(candidate.image_url, "duplicate")
    elif fetched.ok:
        record = {
            "sha256": fetched.sha256,
            "file": fetched.path.name,
            "source": candidate.source,
            "query": candidate.query,
            "page_url": candidate.page_url,
            "image_url": candidate.image_url,
            "creator": candidate.creator,
            "license": candidate.license,
            "license_url": candidate.license_url,
            "attribution": candidate.attribution,
            "width": fetched.width if fetched.width is not None else candidate.width,
            "height": fetched.height if fetched.height is not None else candidate.height,
        }
        manifest.add(record)
        report.stored += 1
        source = by_name.get(candidate.source)
        if source is not None:
            source.on_downloaded(candidate)
        if on_image is not None:
            on_image(record)
    else:
        report.refused[fetched.reason] += 1
        if fetched.permanent:
            manifest.add_failure(candidate.image_url, fetched.reason)
    bar.update(1)
    bar.set_postfix(stored=report.stored, refused=sum(report.refused.values()), refresh=False)


def hide_secrets_in_logs(secrets: Sequence[str]) -> None:
    """Make every root log handler replace `secrets` by *** (call once the CLI set up logging)."""
    secrets = [s for s in secrets if s.strip()]
    if not secrets:
        return

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets(secrets))
