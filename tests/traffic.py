"""Calls through Envoy in a background thread, for a bounded time, counting which replica answered
and every failure: "traffic keeps flowing" as an assertion."""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable

import grpc

from tests.grpc_calls import get_feature


class Traffic:
    def __init__(self, channel_or_env, *, call: Callable[[grpc.Channel], tuple] | None = None,
                 limit_s: float = 90, pause_s: float = 0.02) -> None:
        self.channel = getattr(channel_or_env, "channel", channel_or_env)
        self.call = call or (lambda ch: get_feature(ch, timeout=2))
        self.limit_s = limit_s
        self.pause_s = pause_s
        self.ok = 0
        self.replicas: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                result = self.call(self.channel)
                self.ok += 1
                self.replicas[str(result[-1])] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is reported by the test
                self.failures.append(repr(exc)[:300])
            time.sleep(self.pause_s)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
