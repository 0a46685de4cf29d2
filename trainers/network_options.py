"""The network-size options of `lyriscope train`, `init-model` and `bench`: one vocabulary.

--channel-base, --channel-max and --mapping-layers, as the networks' own arguments are
named. train's older spellings (--cbase, --cmax, --map-depth) still work and say so once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

# The old spelling of each option, accepted with a note.
DEPRECATED: dict[str, str] = {
    "--cbase": "--channel-base",
    "--cmax": "--channel-max",
    "--map-depth": "--mapping-layers",
}


class _Renamed(argparse.Action):
    """Stores like the new option; an old spelling on the command line gets a note on stderr."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if option_string in DEPRECATED:
            print(
                f"{parser.prog}: {option_string} is now {DEPRECATED[option_string]} "
                f"(the old spelling still works)",
                file=sys.stderr,
            )
        setattr(namespace, self.dest, values)


def add_network_options(
    parser: argparse.ArgumentParser,
    *,
    defaults: str,  # what an absent option means, for the help text
    channel_base: int | None = None,
    channel_max: int | None = None,
    mapping_layers: int | None = None,
) -> None:
    """Add --channel-base, --channel-max and --mapping-layers (and their old spellings)."""
    options: Sequence[tuple[str, int | None, str]] = (
        (
            "--channel-base",
            channel_base,
            "generator and discriminator width: channels at a resolution = "
            "min(channel_base / res, channel_max)",
        ),
        ("--channel-max", channel_max, "most channels of any layer"),
        ("--mapping-layers", mapping_layers, "depth of the mapping network"),
    )
    old = {new: old for old, new in DEPRECATED.items()}
    for flag, default, help_text in options:
        shown = str(default) if default is not None else defaults
        parser.add_argument(
            flag,
            old[flag],
            type=int,
            default=default,
            action=_Renamed,
            metavar="N",
            help=f"{help_text} (default: {shown})",
        )
