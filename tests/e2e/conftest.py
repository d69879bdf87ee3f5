"""Fixtures for the e2e tests: one real kube-apiserver + etcd per pytest session.

Every test under ``tests/e2e`` is marked ``e2e`` automatically (run only them with
``-m e2e``, skip them with ``-m 'not e2e'``). ``kube_cluster`` starts the cluster lazily, on the
first test that asks for it, and stops it at the end of the session; when a test fails, the tail
of the kube-apiserver and etcd logs is attached to its report. ``kube_namespace`` gives a test a
fresh namespace (namespaces are never deleted: without kube-controller-manager they would stay
Terminating, so unique names are used instead).

``kube_controller_manager`` adds the real kube-controller-manager to the session's cluster (once
started it runs for the rest of the session; ``pytest --kube-controller-manager`` starts it with
the cluster, so the whole suite runs with it). ``simulated_kubelet`` registers one Node whose
pods become Running/Ready (``tests/e2e/kubelet.py``).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import ClusterError, KubeCluster
from tests.e2e.kubelet import SimulatedKubelet

_HERE = Path(__file__).parent
_CLUSTER_KEY = pytest.StashKey[KubeCluster]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kube-controller-manager",
        action="store_true",
        default=False,
        help="start the real kube-controller-manager with the e2e test cluster (for every test)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    cluster = item.session.stash.get(_CLUSTER_KEY, None)
    if cluster is not None and report.failed:
        report.sections.append(("test cluster logs", cluster.logs_tail(lines=60)))
    return report


@pytest.fixture(scope="session")
def kube_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeCluster]:
    """The session's running test cluster (see ``tests/e2e/cluster.py`` for its API)."""
    state_dir = tmp_path_factory.mktemp("kube-cluster")
    started = time.monotonic()
    failure: str | None = None
    try:
        cluster = KubeCluster.start(
            state_dir, controller_manager=bool(request.config.getoption("--kube-controller-manager"))
        )
    except ClusterError as error:
        failure = str(error)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    request.session.stash[_CLUSTER_KEY] = cluster
    print(
        f"\ntest cluster {cluster.server} ready in {time.monotonic() - started:.1f}s (state in {state_dir})"
    )
    try:
        yield cluster
    finally:
        cluster.stop()
        del request.session.stash[_CLUSTER_KEY]


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> str:
    """A namespace of its own for the test: ``<test name>-<random>``, created as admin."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug or 'test'}-{uuid.uuid4().hex[:6]}"
    kube_cluster.ensure_namespace(name)
    return name


@pytest.fixture(scope="session")
def kube_controller_manager(kube_cluster: KubeCluster) -> KubeCluster:
    """The session's cluster with the real kube-controller-manager running (started on first use)."""
    try:
        kube_cluster.start_controller_manager()
    except ClusterError as error:
        pytest.fail(str(error), pytrace=False)
    return kube_cluster


@pytest.fixture(scope="session")
def simulated_kubelet(kube_controller_manager: KubeCluster) -> Iterator[SimulatedKubelet]:
    """One simulated Node for the session: pods get bound to it and become Running/Ready."""
    kubelet = SimulatedKubelet(kube_controller_manager)
    try:
        kubelet.start()
    except Exception as error:  # the message says which API call failed
        pytest.fail(f"simulated kubelet could not register: {error}", pytrace=False)
    try:
        yield kubelet
    finally:
        kubelet.stop()
