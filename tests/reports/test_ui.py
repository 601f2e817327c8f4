"""The /ui dashboard served by uvicorn and opened in a real headless Chromium, plus the
offline HTML report opened from a file. Skips (with the reason) when Chromium, its
driver or selenium is absent; never downloads a browser."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator.reports.build import build_report
from orchestrator.reports.html import report_html
from orchestrator.reports.ui import router
from orchestrator.store.db import engine
from tests.browser import headless_chromium
from tests.conftest import free_port

from .factory import seed_run

REDIS_TEST_URL = "redis://127.0.0.1:6379/4"


@pytest.fixture
def sqlite_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Session, str]]:
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    with Session(engine(url), expire_on_commit=False) as s:
        run = seed_run(s)
        s.commit()
        yield s, run.id


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet | None]:
    monkeypatch.setenv("REDIS_URL", REDIS_TEST_URL)
    f = Fleet.from_url(REDIS_TEST_URL)
    try:
        f.r.ping()
    except redis.RedisError:
        yield None  # the dashboard must still render: devices section says Redis is down
        return
    f.r.flushdb()
    f.register("00008130-TEST", {"device_class": "A17-Pro", "name": "iPhone 15 Pro", "os_version": "17.5",
                                 "host": "mini-1", "simulated": True})
    f.set_state("00008130-TEST", "quarantined", "3 infrastructure failures")
    yield f
    f.r.flushdb()


def _app() -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    return app


def test_dashboard_tolerates_redis_down(sqlite_db: tuple[Session, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/4")  # nothing listens on port 1
    with TestClient(_app()) as client:
        page = client.get("/ui")
        assert page.status_code == 200
        assert 'id="devices-unavailable"' in page.text and 'data-class="A17-Pro"' in page.text
        assert client.get("/ui/runs/nope").status_code == 404


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def server(sqlite_db: tuple[Session, str], fleet: Fleet | None) -> Iterator[str]:
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_dashboard_in_chromium(browser, server: str, sqlite_db: tuple[Session, str],  # noqa: ANN001
                               fleet: Fleet | None, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/ui")
    sections = browser.find_elements(By.CSS_SELECTOR, "section.matrix")
    assert [s.get_attribute("data-class") for s in sections] == ["A17-Pro", "A15", "M2", "host-cpu"]
    a17 = sections[0]
    assert a17.find_element(By.TAG_NAME, "h3").text == "iPhone 15 Pro (A17 Pro)"
    assert a17.find_element(By.TAG_NAME, "table").size["height"] > 50  # laid out, not just present
    rows = [r.text for r in a17.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows[0].startswith("CoreML 12 MB") and "blocked: needs a macOS exporter" in rows[1]
    assert a17.find_elements(By.CSS_SELECTOR, "td.pass") and a17.find_elements(By.CSS_SELECTOR, ".badge.sim")
    if fleet is None:
        assert browser.find_element(By.ID, "devices-unavailable").is_displayed()
    else:
        device = browser.find_element(By.CSS_SELECTOR, "#devices tr.device")
        assert "00008130-TEST" in device.text and "quarantined" in device.text
    assert browser.find_element(By.ID, "capacity").is_displayed()
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    browser.find_element(By.CSS_SELECTOR, "#runs a").click()
    assert browser.find_elements(By.CSS_SELECTOR, "svg.plot.box")


def test_offline_report_plots_render(browser, sqlite_db: tuple[Session, str], tmp_path: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    s, run_id = sqlite_db
    page = tmp_path / "report.html"
    page.write_text(report_html(build_report(s, run_id)))
    browser.get(page.as_uri())
    plots = browser.find_elements(By.CSS_SELECTOR, "svg.plot.box")
    assert len(plots) == 4
    boxes = plots[0].find_elements(By.CSS_SELECTOR, "g.series rect")
    assert len(boxes) == 3 and all(b.size["width"] >= 1 for b in boxes)  # three measured A17 backends
    assert "blocked" in plots[0].text
    assert browser.find_elements(By.CSS_SELECTOR, "td.fail") and browser.find_elements(By.CSS_SELECTOR, "td.pass")
    assert browser.save_screenshot(str(tmp_path / "report.png"))
