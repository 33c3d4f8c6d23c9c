"""The Python environment the Quix Streams peer runs in.

Quix Streams pins its own ranges of pydantic, pydantic-settings and confluent-kafka, older than
the project's, so it is not installed into the project's environment: the bench builds a
virtual environment of its own for the peer (once, kept under .local/bench), with the project
and the `bench` extra (quixstreams at the release the peer is written against). Only the
peer runs in it; every other contender runs in the project's environment.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

from bench.harness import REPO

QUIX_REQUIREMENT = "quixstreams==3.28.1"
PEER_VENV = REPO / ".local" / "bench" / "quix-venv"


def peer_python(venv_dir: Path = PEER_VENV) -> Path:
    """The peer environment's interpreter, built on first use (a few minutes, then cached)."""
    python = venv_dir / "bin" / "python"
    marker = venv_dir / "installed.txt"
    if python.exists() and marker.exists() and marker.read_text() == QUIX_REQUIREMENT:
        return python
    print(f"building the Quix Streams peer's environment in {venv_dir} ({QUIX_REQUIREMENT})", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f"{REPO}[bench]"],
        check=True,
        stdout=sys.stdout,
        stderr=sys.stderr,
    )
    marker.write_text(QUIX_REQUIREMENT)
    return python
