"""Where the read-only reference material lives (Nictiz TestScripts and fixtures, MedMij lists)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``DVZA_SHARED_DIR``, else ``../shared`` next to this checkout."""
    configured = os.environ.get("DVZA_SHARED_DIR")
    return Path(configured) if configured else REPO.parent / "shared"
