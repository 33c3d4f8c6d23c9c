"""Where the worker's time goes: a pyinstrument session summarised by package and by function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyinstrument.frame import AWAIT_FRAME_IDENTIFIER, SELF_TIME_FRAME_IDENTIFIER
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

OURS = ("streams", "schemas", "bench", "receiver")


def _area(path: str | None) -> str:
    if not path:
        return "(native)"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for package in OURS:
        if f"/{package}/" in path and "/lib/python" not in path:
            return package
    if "/asyncio/" in path:
        return "asyncio"
    return "stdlib"


def summarise(session_path: Path, text_path: Path, top: int = 15) -> dict[str, Any]:
    """Self time by package and the top functions; writes the full call tree as text."""
    session = Session.load(str(session_path))
    text_path.write_text(ConsoleRenderer(unicode=True, color=False, show_all=False).render(session), encoding="utf-8")
    root = session.root_frame()
    by_area: dict[str, float] = {}
    by_function: dict[str, float] = {}
    stack = [root] if root is not None else []
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        own = frame.total_self_time
        if own <= 0:
            continue
        # Synthetic frames carry the self time of their parent (or the time spent awaiting).
        owner = frame.parent if frame.identifier == SELF_TIME_FRAME_IDENTIFIER and frame.parent else frame
        if frame.identifier == AWAIT_FRAME_IDENTIFIER or owner.function == "epoll.poll":
            area, where = "(idle: awaiting I/O)", "(idle: awaiting I/O)"
        else:
            area = _area(owner.file_path)
            where = f"{area}:{owner.function}"
            if owner.file_path and owner.line_no:
                where += f" ({Path(owner.file_path).name}:{owner.line_no})"
        by_area[area] = by_area.get(area, 0.0) + own
        by_function[where] = by_function.get(where, 0.0) + own
    total = sum(by_area.values()) or 1.0
    return {
        "duration_s": round(session.duration, 2),
        "cpu_s": round(session.cpu_time, 2) if session.cpu_time else None,
        "self_time_share_by_package": {k: round(v / total, 3) for k, v in _top(by_area, 12)},
        "top_functions_self_share": {k: round(v / total, 3) for k, v in _top(by_function, top)},
        "call_tree": str(text_path),
    }


def _top(shares: dict[str, float], n: int) -> list[tuple[str, float]]:
    return sorted(shares.items(), key=lambda item: -item[1])[:n]
