"""Building blocks shared by every validated YAML document (matrix specs, host
inventories, fleets, budgets, the backend registry and the virtual perf model)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from device_inventory.catalog import UnknownDeviceClass, catalog


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo must not be silently ignored); values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_class(name: str) -> str:
    try:
        return catalog().resolve_class(name).id
    except UnknownDeviceClass as exc:
        raise ValueError(str(exc)) from None


# a device class id, display name or alias, normalised to the id ("a17 pro" -> "A17-Pro")
DeviceClassName = Annotated[str, AfterValidator(_resolve_class)]
