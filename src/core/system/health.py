"""Health: asks every probe the container wires and says whether all is well."""

from __future__ import annotations

from dataclasses import dataclass

from src.ports.shared import ComponentHealth, HealthProbe


@dataclass(frozen=True, slots=True)
class HealthReport:
    components: list[ComponentHealth]

    @property
    def ok(self) -> bool:
        return all(component.ok for component in self.components)


class CheckHealth:
    def __init__(self, probes: list[HealthProbe]) -> None:
        self._probes = probes

    async def execute(self) -> HealthReport:
        components: list[ComponentHealth] = []
        for probe in self._probes:
            try:
                components.extend(await probe.check())
            except Exception as exc:  # a probe that breaks is itself a failed check, never a 500
                components.append(ComponentHealth(type(probe).__name__, False, str(exc) or type(exc).__name__))
        return HealthReport(components)
