"""One served emulator per module; each test gets a :class:`Lab` in its own directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.served import Served, start, stop
from tests.reliability.harness import Lab


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # A little latency, so concurrent requests overlap as they do against Graph. Replication
    # lag only where a test asks for it (control resets come back to no lag).
    served = start(
        tmp_path_factory.mktemp("emulator"), "--latency-ms", "20", "--replication-lag", "0"
    )
    yield served
    stop(served)


@pytest.fixture
def lab(server: Served, tmp_path: Path) -> Lab:
    made = Lab(server, tmp_path)
    made.reset()
    return made
