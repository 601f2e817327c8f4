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


@dataclass(frozen=True)
class Product:
    product_type: str
    name: str
    device_class: str


@dataclass(frozen=True)
class Catalog:
    classes: dict[str, DeviceClass]
    products: dict[str, Product]
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
            products[ptype] = Product(ptype, p["name"], p["class"])
        index: dict[str, str] = {}
        for c in classes.values():
            for name in (c.id, c.display, *c.aliases):
                index[_norm(name)] = c.id
        return cls(classes, products, index)

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

    def products_of_class(self, class_id: str) -> list[Product]:
        return [p for p in self.products.values() if p.device_class == class_id]


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return Catalog.load()
