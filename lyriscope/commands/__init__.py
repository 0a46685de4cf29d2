"""Core subcommands of the `lyriscope` CLI (new, check)."""
