from __future__ import annotations

import ctsync.audit


def test_all_is_sorted_and_complete() -> None:
    names = ctsync.audit.__all__

    def rank(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)

    assert names == sorted(names, key=rank)
    for name in names:
        assert hasattr(ctsync.audit, name)
