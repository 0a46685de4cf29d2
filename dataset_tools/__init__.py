"""Images for a lyric line: queries, sources, download, verify, features, clusters, curation, prepare."""
