"""The `signalbox` console script's entry: runs `signalbox_client.cli`, or says which extra to
install when its dependencies (the `cli` extra) are missing."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from signalbox_client.cli import main as run
    except ImportError as exc:
        sys.stderr.write(
            f"signalbox: the CLI needs the `cli` extra: pip install 'signalbox-client[cli]' (missing: {exc.name})\n"
        )
        sys.exit(1)
    run()
