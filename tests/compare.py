"""The engine's outputs made two ways, held to each other file by file."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from deid.engine import Output


def assert_same_both_ways(paths: Iterable[Path], profiles: Iterable,
                          both_ways: Callable[[bytes, object], tuple[object, object]]) -> int:
    """Each file under each profile made both ways: the same kind of result, the same bytes
    and UID mappings when written, the same rejection otherwise. Returns how many were
    written."""
    written = 0
    paths = list(paths)
    for profile in profiles:
        for path in paths:
            one, other = both_ways(path.read_bytes(), profile)
            where = f"{path.name} under {profile.names}"
            assert type(one) is type(other), where
            if isinstance(one, Output):
                assert one.data == other.data, where
                assert one.uid_map == other.uid_map, where
                written += 1
            else:
                assert one == other, where
    return written
