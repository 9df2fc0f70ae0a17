"""Await a condition instead of sleeping on it: poll until it holds, fail with a message at a deadline."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02,
               message: str | Callable[[], str] = "") -> T:
    """Call `condition` until it returns something truthy and return that; an AssertionError
    after `timeout` seconds (the last value and `message` in it). Sleeps only between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"not true after {timeout} s: {text or condition!r} (last: {value!r})")
        time.sleep(interval)
