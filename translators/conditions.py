"""Status conditions as plain dicts (no timestamps: the writer adds them, so translation stays pure)."""
from __future__ import annotations


def condition(ctype: str, ok: bool, reason: str, message: str = "") -> dict:
    return {"type": ctype, "status": "True" if ok else "False", "reason": reason, "message": message}
