"""The curation of a set inside the studio: the CurationSession of `lyriscope curate`, per request.

A session is made for each request from the clusters on disk, so a line clustered again a
minute ago shows its new clusters; decisions go through CurationSession.decide, the same
checks and the same curation.json as the curation page.
"""

from __future__ import annotations

import io

from PIL import Image

from lyriscope.dataset_tools.cluster import read_clusters
from lyriscope.dataset_tools.contact_sheet import square_thumbnail
from lyriscope.dataset_tools.curate_server import THUMB_SIDE, CurationSession
from lyriscope.dataset_tools.verify import RejectedImage, load_rgb
from lyriscope.setmodel import SongSet


def curation_session(songset: SongSet) -> CurationSession | None:
    """A session over the set's clustered lines; None when no line has clusters yet."""
    lines = [i for i in range(len(songset.lines)) if read_clusters(songset.root, i) is not None]
    if not lines:
        return None
    return CurationSession(songset.root, lines, titles={i: songset.lines[i].text for i in lines})


def curation_state(songset: SongSet) -> dict:
    """CurationSession.state(), or an empty page when nothing is clustered."""
    session = curation_session(songset)
    if session is None:
        return {"set": songset.name, "sheet_row_width": 0, "lines": []}
    return session.state()


def thumbnail_jpeg(songset: SongSet, line: int, sha256: str) -> bytes | None:
    """A clustered image's square thumbnail (line 0-based); None when the line has no such image."""
    session = curation_session(songset)
    path = None if session is None else session.image_file(line, sha256)
    if path is None:
        return None
    try:
        thumb = square_thumbnail(load_rgb(path), THUMB_SIDE)
    except RejectedImage:  # unreadable now: a dark red square says so
        thumb = Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (90, 0, 0))
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    return buf.getvalue()
