"""The image tests (marker ``images``; skip them while developing with ``-m "not images"``).

The session builds the arm64 base when it is not cached (≈12 min the first time on a machine, then cached in
/var/cache/hallq/images) and every role's image into a temporary folder, once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from imagekit import REPO, have_tools

ROLES = ("controller", "kiosk", "display", "pad")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.images)


@pytest.fixture(scope="session")
def base_tar():
    missing = have_tools()
    if missing:
        pytest.fail(f"image tools missing: {', '.join(missing)} (make setup installs them)")
    from build import build_base

    return build_base()


@pytest.fixture(scope="session")
def images(request, tmp_path_factory) -> dict[str, Path]:
    """Every role's image, built from this tree (HALLQ_TEST_IMAGES=DIR reuses images built there)."""
    reuse = os.environ.get("HALLQ_TEST_IMAGES")
    if reuse:
        return {r: Path(reuse) / f"hallq-{r}.img" for r in ROLES}
    from layer import build_image

    base_tar = request.getfixturevalue("base_tar")
    out = tmp_path_factory.mktemp("images")
    return {r: build_image(r, base_tar, out) for r in ROLES}


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
