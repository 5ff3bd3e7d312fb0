"""The build cache index: (parent image, step key) → image, valid only while it exists."""

from __future__ import annotations

import os

from runtime.build import cache
from runtime.images import store


def test_a_recorded_step_is_found_only_for_the_same_parent_and_key() -> None:
    child = store.put_config(b'{"config":{},"cache-test":1}')
    cache.record("sha256:" + "a" * 64, '#(nop)  CMD ["sh"]', child)
    assert cache.lookup("sha256:" + "a" * 64, '#(nop)  CMD ["sh"]') == child
    assert cache.lookup("sha256:" + "b" * 64, '#(nop)  CMD ["sh"]') is None
    assert cache.lookup("sha256:" + "a" * 64, '#(nop)  CMD ["bash"]') is None


def test_an_entry_whose_image_was_removed_is_a_miss() -> None:
    child = store.put_config(b'{"config":{},"cache-test":2}')
    cache.record("", "/bin/sh -c true", child)
    os.unlink(store._blob(child))
    assert cache.lookup("", "/bin/sh -c true") is None


def test_clear_forgets_every_entry() -> None:
    child = store.put_config(b'{"config":{},"cache-test":3}')
    cache.record("", "key", child)
    assert cache.clear() >= 1
    assert cache.lookup("", "key") is None
