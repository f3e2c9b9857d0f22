"""The container provides every service core's Services protocol names (mypy checks the types of those it
has; a missing one would only show at run time, so it is checked here), and each builds."""

from __future__ import annotations

import inspect

from src.container import Container, build_container, shutdown
from src.core.services import Services


def _service_names() -> set[str]:
    return {name for cls in Services.__mro__ if cls.__module__.startswith("src.core")
            for name, member in vars(cls).items() if inspect.isfunction(member) and not name.startswith("_")}


def test_the_container_provides_every_service():
    names = _service_names()
    assert len(names) > 70
    assert names - set(Container.providers) == set()


async def test_each_service_is_built_by_its_provider(settings):
    container = build_container(settings)
    try:
        for name in sorted(_service_names()):
            assert getattr(container, name)() is not None, name
    finally:
        await shutdown(container)
