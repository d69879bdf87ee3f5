"""Offline source: load a directory with the real compiler, reload on change, keep last good state."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from exporter.exposition import Exposition
from exporter.offline import LoadError, OfflineSource, load_directory
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry
from tests.expo_checks import check_exposition
from tests.offline_fixtures import deployment, make_source_dir, write_and_touch

REPLICAS = "apps_deployment_status_replicas"


def replicas(store: MetricsStore) -> dict[str, float]:
    checked = check_exposition(Exposition(store).body(fmt="text"))
    return {labels["deployment"]: value for labels, value in checked.samples(REPLICAS)}


def new_store() -> MetricsStore:
    return MetricsStore(telemetry=Telemetry(process_metrics=False))


async def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_load_directory_matches_objects_to_configurations(tmp_path: Path) -> None:
    root = make_source_dir(tmp_path)
    (root / "objects" / "other.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    snapshot = load_directory([str(root)])
    assert [p.name for p in snapshot.plans] == ["apps-deployment"]
    assert snapshot.object_count == 2 and snapshot.unmatched == 1


def test_load_errors_name_file_and_field_and_isolate_the_bad_file(tmp_path: Path) -> None:
    root = make_source_dir(tmp_path)
    (root / "objects" / "broken.yaml").write_text("a: [1, 2\n")
    snapshot = load_directory([str(root)])
    (problem,) = snapshot.problems
    assert "broken.yaml" in problem and "malformed YAML" in problem
    assert [p.name for p in snapshot.plans] == ["apps-deployment"] and snapshot.object_count == 2
    (root / "objects" / "broken.yaml").unlink()
    cfg = root / "configs" / "apps-deployment.yaml"
    text = cfg.read_text()
    line = text[:text.index("type: Integer")].count("\n") + 1
    cfg.write_text(text.replace("type: Integer", "type: Intgr"))
    (root / "configs" / "other.yaml").write_text(text.replace("name: apps-deployment", "name: other")
                                                 .replace("kind: Deployment", "kind: StatefulSet"))
    snapshot = load_directory([str(root)])
    (problem,) = snapshot.problems
    assert f"apps-deployment.yaml:{line}: " in problem and "spec.metrics[0].field.type" in problem
    assert [p.name for p in snapshot.plans] == ["other"]  # the good configuration still loads


async def test_reload_on_change_and_keep_last_good_state(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    root = make_source_dir(tmp_path)
    store = new_store()
    source = OfflineSource([str(root)], store, poll_interval=0.05)
    await source.start()
    try:
        assert replicas(store) == {"web": 4, "api": 2}

        # An edited object is picked up.
        write_and_touch(root / "objects" / "web.yaml", deployment("web", "shop", replicas=7))
        await wait_for(lambda: replicas(store).get("web") == 7)

        # A new file, a deleted file.
        write_and_touch(root / "objects" / "db.yaml", deployment("db", "core", replicas=1))
        (root / "objects" / "api.yaml").unlink()
        await wait_for(lambda: replicas(store) == {"web": 7, "db": 1})

        # A bad edit: logged with the file name, that file keeps its last good content.
        with caplog.at_level(logging.ERROR, logger="exporter.offline"):
            write_and_touch(root / "objects" / "web.yaml", "kind: [unclosed\n")
            await wait_for(lambda: bool(source.last_problems))
        assert "web.yaml" in caplog.text and "keeping its last good content" in caplog.text
        assert replicas(store) == {"web": 7, "db": 1}
        assert store.telemetry.source_reloads.labels("partial")._value.get() == 1
        assert store.telemetry.source_problems._value.get() == 1

        # Meanwhile another file is reloaded on its own.
        write_and_touch(root / "objects" / "db.yaml", deployment("db", "core", replicas=5))
        await wait_for(lambda: replicas(store) == {"web": 7, "db": 5})

        # Fixing it reloads.
        write_and_touch(root / "objects" / "web.yaml", deployment("web", "shop", replicas=3))
        await wait_for(lambda: replicas(store).get("web") == 3)
        assert source.last_problems == []

        # Removing the configuration removes its families.
        (root / "configs" / "apps-deployment.yaml").unlink()
        await wait_for(lambda: store.plans() == [])
        assert Exposition(store).body(fmt="text") == b""
    finally:
        await source.stop()


async def test_start_fails_with_load_error_on_bad_directory(tmp_path: Path) -> None:
    root = make_source_dir(tmp_path)
    cfg = root / "configs" / "apps-deployment.yaml"
    cfg.write_text(cfg.read_text().replace("name: status_replicas", "name: bad-name"))
    source = OfflineSource([str(root)], new_store())
    with pytest.raises(LoadError, match=r"spec\.metrics\[0\]\.name"):
        await source.start()
    assert not source.loaded


def test_a_configuration_that_stops_compiling_keeps_its_last_good_plan(tmp_path: Path) -> None:
    root = make_source_dir(tmp_path)
    first = load_directory([str(root)])
    cfg = root / "configs" / "apps-deployment.yaml"
    cfg.write_text(cfg.read_text().replace("type: Integer", "type: Intgr"))
    again = load_directory([str(root)], previous={p.name: p for p in first.plans})
    assert [p.name for p in again.plans] == ["apps-deployment"] and again.plans[0] is first.plans[0]
    assert any("keeping its last good version" in p for p in again.problems)
    assert any("spec.metrics[0].field.type" in p for p in again.problems)
