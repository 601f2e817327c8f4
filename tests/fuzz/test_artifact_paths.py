"""Artifact keys and upload paths cannot leave the store: anything that is not 64 hex
digits is refused before it touches a path, and every accepted key maps under the root."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.export.artifacts import ArtifactStore, BadArtifactName, check_key
from tests.fuzz.strategies import FUZZ

HEX = "0123456789abcdef"
TRAVERSALS = ["../" * 8 + "etc/passwd", "..", "/etc/passwd", "a" * 63 + "/", "a" * 62 + "..",
              "..%2f" * 4, "a" * 64 + "\x00", "A" * 64, "a" * 65, "\\..\\" + "a" * 60,
              "ａ" * 64, "a" * 32 + "/" + "a" * 31]
path_like = st.lists(st.sampled_from(["..", ".", "/", "\\", "%2e", "\x00", "~", "a", "0f", "é", "\n"]),
                     max_size=40).map("".join)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ArtifactStore:
    return ArtifactStore(tmp_path_factory.mktemp("store"))


def assert_refused_or_inside(store: ArtifactStore, key: object) -> None:
    try:
        check_key(key)  # type: ignore[arg-type]
    except BadArtifactName:
        for method in (store.pte_path, store.meta_path, store.golden_path, store.exists):
            with pytest.raises(BadArtifactName):
                method(key)  # type: ignore[arg-type]
        return
    root = store.root.resolve()
    for p in (store.pte_path(key), store.meta_path(key), store.golden_path(key)):  # type: ignore[arg-type]
        assert root in Path(p).resolve().parents


@pytest.mark.parametrize("key", TRAVERSALS)
def test_known_traversals_are_refused(store: ArtifactStore, key: str) -> None:
    with pytest.raises(BadArtifactName):
        check_key(key)
    with pytest.raises(BadArtifactName):
        store.put(key, b"x", {})
    assert not any(store.root.parent.glob("**/passwd"))


def test_a_key_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(BadArtifactName):
        check_key("a" * 64 + "\n")


@FUZZ
@given(st.one_of(path_like, st.text(max_size=70), st.text(alphabet=HEX + "./", min_size=60, max_size=68),
                 st.integers(), st.none(), st.binary(max_size=70)))
def test_fuzzed_keys_are_refused_or_stay_inside_the_root(store: ArtifactStore, key: object) -> None:
    assert_refused_or_inside(store, key)


@FUZZ
@given(st.text(alphabet=HEX, min_size=64, max_size=64))
def test_every_valid_key_roundtrips_inside_the_root(store: ArtifactStore, key: str) -> None:
    assert_refused_or_inside(store, key)
    stored = store.put(key, b"program", {"k": 1})
    assert store.get(key).path == stored.path and store.root.resolve() in stored.path.resolve().parents
    store.remove(key)
