"""A real RFC 3161 authority (`openssl ts` under a throw-away CA) for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testutils.tsa import TimestampAuthority


@pytest.fixture(scope="session")
def time_stamp_authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimestampAuthority]:
    with TimestampAuthority(tmp_path_factory.mktemp("tsa")) as authority:
        yield authority
