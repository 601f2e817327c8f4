"""The harness .ipa: placeholder determinism, identity, and the reinstall decision."""

from __future__ import annotations

import hashlib
import plistlib
import zipfile

import pytest

from agents.drivers.ios_ipa import (
    BUILD_HASH_KEY,
    HARNESS_BUNDLE_ID,
    IpaError,
    placeholder_ipa,
    read_ipa,
    write_placeholder_ipa,
)


def test_placeholder_is_deterministic_and_readable(tmp_path):
    assert placeholder_ipa() == placeholder_ipa()
    assert placeholder_ipa("0.0.2") != placeholder_ipa()
    info = read_ipa(write_placeholder_ipa(tmp_path / "h.ipa", version="1.2.3", build="9"))
    assert (info.bundle_id, info.version, info.build) == (HARNESS_BUNDLE_ID, "1.2.3", "9")
    assert len(info.build_hash) == 64


def test_build_hash_falls_back_to_file_hash(tmp_path):
    path = tmp_path / "plain.ipa"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Payload/X.app/Info.plist", plistlib.dumps(
            {"CFBundleIdentifier": "a.b", "CFBundleShortVersionString": "1", "CFBundleVersion": "1"}))
    assert read_ipa(path).build_hash == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("content,match", [
    (b"not a zip", "not a valid .ipa"),
    (None, "expected one Payload"),
    ({"CFBundleIdentifier": "a.b", "CFBundleVersion": "1"}, "CFBundleShortVersionString"),
])
def test_bad_ipa_is_named(tmp_path, content, match):
    path = tmp_path / "bad.ipa"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with zipfile.ZipFile(path, "w") as zf:
            if content is not None:
                zf.writestr("Payload/X.app/Info.plist", plistlib.dumps(content))
    with pytest.raises(IpaError, match=match) as info:
        read_ipa(path)
    assert str(path) in str(info.value)


def test_reinstall_decision(tmp_path):
    ipa = read_ipa(write_placeholder_ipa(tmp_path / "h.ipa", version="2.0", build="5"))
    same = {"CFBundleShortVersionString": "2.0", "CFBundleVersion": "5", BUILD_HASH_KEY: ipa.build_hash}
    assert ipa.differs_from(same, None) is None
    assert ipa.differs_from(None, None) == "not installed"
    assert "1.0" in ipa.differs_from(dict(same, CFBundleShortVersionString="1.0"), None)
    assert "build" in ipa.differs_from(dict(same, **{BUILD_HASH_KEY: "0" * 64}), None)
    # without a hash in the record, the driver's own memory of what it installed decides
    bare = {"CFBundleShortVersionString": "2.0", "CFBundleVersion": "5"}
    assert ipa.differs_from(bare, None) is None
    assert ipa.differs_from(bare, ipa.build_hash) is None
    assert ipa.differs_from(bare, "f" * 64) is not None
