"""lyriscope studio: the whole flow of a set in one local, token-protected web app."""
