"""Where the real Birmingham car-park series sits, for the calibration tests that use it.

``../shared/data`` beside the repository root (a worktree under ``wt/`` looks one level
higher); the tests that need it skip with this path in their reason when it is absent."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_RELATIVE = "shared/data/birmingham-parking/dataset.csv"
BIRMINGHAM = next(
    (p for p in (ROOT.parent / _RELATIVE, ROOT.parents[1] / _RELATIVE) if p.is_file()),
    ROOT.parent / _RELATIVE,
)
