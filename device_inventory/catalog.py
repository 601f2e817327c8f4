"""The hardware catalog: which ProductType is which device class.

The catalog is data (``catalog.yaml``); this module only loads and queries it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")


class UnknownDeviceClass(ValueError):
    """A device class name that is neither a class id nor an alias."""


class UnknownProductType(KeyError):
    """A ProductType the catalog does not list (a new device: add it to catalog.yaml)."""


@dataclass(frozen=True)
class DeviceClass:
    id: str
    display: str
    chip: str
    kind: str  # "ios" or "host"
    reference_device: str
    aliases: tuple[str, ...] = ()


class ImpossibleOsVersion(ValueError):
    """A ProductType/OS version pair no real device can have (older than it shipped with, or
    newer than it supports), or a version whose real build number the catalog does not know."""


@dataclass(frozen=True)
class Product:
    product_type: str
    name: str
    device_class: str
    shipped: str = ""  # the OS version it came out with
    newest: str = ""  # the newest major version it supports

    def check_os(self, version: str) -> None:
        """Raise ImpossibleOsVersion unless ``version`` lies in [shipped, newest.x]."""
        if not self.shipped:
            return
        v = _vtuple(version)
        if v < _vtuple(self.shipped) or v[0] > int(self.newest.split(".")[0]):
            raise ImpossibleOsVersion(
                f"{self.product_type} ({self.name}) cannot run iOS {version}: it shipped with "
                f"{self.shipped} and supports up to {self.newest}.x (allowed: {self.shipped} to {self.newest}.x)")


@dataclass(frozen=True)
class Catalog:
    classes: dict[str, DeviceClass]
    products: dict[str, Product]
    builds: dict[str, str] = field(default_factory=dict)  # ProductVersion -> real BuildVersion
    _alias_index: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path = CATALOG_PATH) -> Catalog:
        raw = yaml.safe_load(path.read_text())
        classes = {
            cid: DeviceClass(
                id=cid,
                display=c["display"],
                chip=c["chip"],
                kind=c.get("kind", "ios"),
                reference_device=c.get("reference_device", c["display"]),
                aliases=tuple(c.get("aliases", [])),
            )
            for cid, c in raw["classes"].items()
        }
        products = {}
        for ptype, p in raw["products"].items():
            if p["class"] not in classes:
                raise ValueError(f"{path}: product {ptype} names unknown class {p['class']!r}")
            products[ptype] = Product(ptype, p["name"], p["class"], str(p.get("shipped", "")),
                                      str(p.get("newest", "")))
        index: dict[str, str] = {}
        for c in classes.values():
            for name in (c.id, c.display, *c.aliases):
                index[_norm(name)] = c.id
        builds = {str(k): str(v) for k, v in (raw.get("builds") or {}).items()}
        return cls(classes, products, builds, index)

    def resolve_class(self, name: str) -> DeviceClass:
        """Class by id, display name or alias, case- and punctuation-insensitive."""
        cid = self._alias_index.get(_norm(name))
        if cid is None:
            raise UnknownDeviceClass(
                f"unknown device class {name!r} (known: {', '.join(sorted(self.classes))})"
            )
        return self.classes[cid]

    def product(self, product_type: str) -> Product:
        try:
            return self.products[product_type]
        except KeyError:
            raise UnknownProductType(
                f"ProductType {product_type!r} is not in the catalog ({CATALOG_PATH.name})"
            ) from None

    def class_of_product(self, product_type: str) -> DeviceClass:
        return self.classes[self.product(product_type).device_class]

    def build_of(self, version: str) -> str:
        """The real BuildVersion of a release the catalog lists; ImpossibleOsVersion otherwise."""
        try:
            return self.builds[version]
        except KeyError:
            raise ImpossibleOsVersion(
                f"iOS {version}: no confirmed build number in {CATALOG_PATH.name} "
                f"(known: {', '.join(self.builds)})") from None

    def check_device(self, product_type: str, version: str) -> str:
        """Validate a device/OS pair; returns the version's BuildVersion."""
        self.product(product_type).check_os(version)
        return self.build_of(version)

    def products_of_class(self, class_id: str) -> list[Product]:
        return [p for p in self.products.values() if p.device_class == class_id]


def _vtuple(version: str) -> tuple[int, ...]:
    parts = [int(x) for x in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return Catalog.load()
