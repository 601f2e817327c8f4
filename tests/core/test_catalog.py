import pytest

from device_inventory.catalog import UnknownDeviceClass, UnknownProductType, catalog


@pytest.mark.parametrize("ptype,name,cls", [
    ("iPhone16,1", "iPhone 15 Pro", "A17-Pro"),
    ("iPhone16,2", "iPhone 15 Pro Max", "A17-Pro"),
    ("iPhone14,5", "iPhone 13", "A15"),
    ("iPhone14,2", "iPhone 13 Pro", "A15"),
    ("iPhone14,7", "iPhone 14", "A15"),
    ("iPad14,3", "iPad Pro 11-inch (4th generation)", "M2"),
    ("iPad14,6", "iPad Pro 12.9-inch (6th generation)", "M2"),
])
def test_product_types_map_to_classes(ptype, name, cls):
    assert catalog().product(ptype).name == name
    assert catalog().class_of_product(ptype).id == cls


def test_every_required_product_is_listed():
    required = ["iPhone16,1", "iPhone16,2", "iPhone14,5", "iPhone14,2", "iPhone14,3", "iPhone14,4",
                "iPhone14,7", "iPhone14,8", "iPad14,3", "iPad14,4", "iPad14,5", "iPad14,6"]
    assert all(p in catalog().products for p in required)
    assert catalog().classes["host-cpu"].kind == "host"
    assert catalog().classes["A17-Pro"].chip == "A17 Pro"


def test_aliases_and_unknowns():
    assert catalog().resolve_class("a17 pro").id == "A17-Pro"
    assert catalog().resolve_class("A15 Bionic").id == "A15"
    with pytest.raises(UnknownDeviceClass, match="known: A15, A16, A17-Pro, M2, host-cpu"):
        catalog().resolve_class("Snapdragon")
    with pytest.raises(UnknownProductType, match="iPhone99,9"):
        catalog().product("iPhone99,9")
