"""Schedules file validation, slot computation and the idempotent trigger (real Redis DB 8 + DB)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.scheduling.schedules import load_schedules, parse_cron, previous_fire
from orchestrator.scheduling.trigger import UnknownSchedule, fire, fired_key, publish
from orchestrator.spec.yamlpos import SpecError
from orchestrator.store.db import session
from orchestrator.store.models import Run

SPEC = "name: nightly-test\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\n"


def write(tmp_path: Path, schedules: str, spec: str = SPEC) -> Path:
    (tmp_path / "matrix.yaml").write_text(spec)
    path = tmp_path / "schedules.yaml"
    path.write_text(schedules)
    return path


def entry(cron: str = "0 2 * * *", spec: str = "matrix.yaml", name: str = "nightly") -> str:
    return f"  - name: {name}\n    cron: \"{cron}\"\n    spec: {spec}\n"


def test_valid_file_resolves_spec_relative_to_it(tmp_path: Path) -> None:
    sf = load_schedules(write(tmp_path, "schedules:\n" + entry()))
    assert sf.schedules[0].spec == (tmp_path / "matrix.yaml").resolve()
    assert sf.schedules[0].trigger == "nightly"


def test_example_schedules_file_validates() -> None:
    assert load_schedules(Path(__file__).parents[2] / "examples" / "schedules.yaml").schedules


@pytest.mark.parametrize(("text", "spec", "expected"), [
    ("schedules:\n" + entry(cron="61 2 * * *"), SPEC, "schedules.yaml:3: schedules[0].cron: cron '61 2 * * *'"),
    ("schedules:\n" + entry(cron="0 2 * *"), SPEC, "schedules.yaml:3: schedules[0].cron: cron '0 2 * *' needs 5"),
    ("schedules:\n" + entry(spec="missing.yaml"), SPEC, "schedules.yaml:4: schedules[0].spec: the matrix spec "
                                                         "does not validate: "),
    ("schedules:\n" + entry(), SPEC.replace("xnnpack", "xnnpak"), "matrix.yaml:3: backends[0]: unknown backend"),
    ("schedules:\n" + entry() + entry(), SPEC, "schedule names must be unique, repeated: nightly"),
    ("schedules:\n" + entry() + "    trigger: pr\n", SPEC, "schedules.yaml:5: schedules[0].trigger"),
    ("schedules:\n" + entry() + "    hour: 3\n", SPEC, "schedules.yaml:5: schedules[0].hour: Extra inputs"),
    ("schedules: [\n", SPEC, "schedules.yaml:1: invalid YAML"),
])
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, spec: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load_schedules(write(tmp_path, text, spec))
    assert expected in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "schedules.yaml"))


def test_scheduler_command_refuses_a_bad_file(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from orchestrator.cli.service import scheduler_command

    cli = typer.Typer()
    cli.command()(scheduler_command)
    path = write(tmp_path, "schedules:\n" + entry(cron="0 25 * * *"))
    out = CliRunner().invoke(cli, ["--schedules", str(path)])
    assert out.exit_code == 2 and "schedules.yaml:3: schedules[0].cron" in " ".join(out.output.split())


@pytest.mark.parametrize(("cron", "now", "slot"), [
    ("0 2 * * *", "2026-11-25T02:00:30", "2026-11-25T02:00"),
    ("0 2 * * *", "2026-11-25T01:59:59", "2026-11-24T02:00"),
    ("*/15 * * * *", "2026-11-25T10:44:00", "2026-11-25T10:30"),
    ("30 4 * * 1", "2026-11-25T12:00:00", "2026-11-23T04:30"),  # Wednesday -> Monday
    ("0 0 29 2 *", "2026-11-25T12:00:00", "2024-02-29T00:00"),
])
def test_previous_fire(cron: str, now: str, slot: str) -> None:
    got = previous_fire(parse_cron(cron), datetime.fromisoformat(now).replace(tzinfo=UTC))
    assert got == datetime.fromisoformat(slot).replace(tzinfo=UTC)


def test_trigger_submits_once_per_slot(svc_env: dict[str, str], tmp_path: Path) -> None:
    fleet = Fleet.from_url(svc_env["REDIS_URL"])
    with pytest.raises(UnknownSchedule):
        fire("nightly", fleet)
    publish(fleet, load_schedules(write(tmp_path, "schedules:\n" + entry())))
    at = datetime(2026, 11, 25, 2, 0, 5, tzinfo=UTC)
    first = fire("nightly", fleet, now=at)
    again = fire("nightly", fleet, now=at.replace(minute=40))
    assert not first.duplicate and first.run_id
    assert again.duplicate and again.run_id == first.run_id
    nxt = fire("nightly", fleet, now=at.replace(day=26))
    assert not nxt.duplicate and nxt.run_id != first.run_id
    with session() as s:
        runs = s.scalars(select(Run).order_by(Run.created_at)).all()
        assert [(r.id, r.trigger, r.requested_by) for r in runs] == [
            (first.run_id, "nightly", "schedule:nightly"), (nxt.run_id, "nightly", "schedule:nightly")]
        assert runs[0].meta == {"schedule": "nightly", "scheduled_for": "2026-11-25T02:00:00+00:00"}
    assert fleet.r.ttl(fired_key("nightly", first.scheduled_for)) > 0


def test_failed_submit_frees_the_slot(svc_env: dict[str, str], tmp_path: Path) -> None:
    fleet = Fleet.from_url(svc_env["REDIS_URL"])
    path = write(tmp_path, "schedules:\n" + entry())
    publish(fleet, load_schedules(path))
    (tmp_path / "matrix.yaml").write_text(SPEC.replace("xnnpack", "xnnpak"))  # broken after publishing
    at = datetime(2026, 11, 25, 2, 1, tzinfo=UTC)
    with pytest.raises(SpecError, match="matrix.yaml:3"):
        fire("nightly", fleet, now=at)
    assert fleet.r.get(fired_key("nightly", previous_fire(parse_cron("0 2 * * *"), at))) is None
    (tmp_path / "matrix.yaml").write_text(SPEC)
    assert fire("nightly", fleet, now=at).run_id
