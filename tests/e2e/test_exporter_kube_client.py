"""kube.client against the real kube-apiserver: TLS trust and client certificates from files
and from inline data, service-account tokens from a (rotating) file, metav1.Status errors,
paginated LISTs, server-side apply (also dry-run), merge patch, delete with preconditions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kube.client import ApiError, KubeClient
from kube.config import ClientConfig, load_config
from kube.paths import resource_path
from tests.e2e.cluster import KubeCluster


def test_client_certificate_from_inline_data(kube_cluster: KubeCluster) -> None:
    files = load_config(kubeconfig=str(kube_cluster.kubeconfig))
    assert files.cert_file and files.key_file and files.ca_file
    inline = ClientConfig(
        server=files.server,
        ca_data=Path(files.ca_file).read_bytes(),
        cert_data=Path(files.cert_file).read_bytes(),
        key_data=Path(files.key_file).read_bytes(),
    )

    async def main() -> set[str]:
        async with KubeClient(inline) as client:
            items, rv = await client.list("/api/v1/namespaces")
            assert rv.isdigit()
            return {i["metadata"]["name"] for i in items}

    assert "kube-system" in asyncio.run(main())


def test_untrusted_server_certificate_is_refused(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    files = load_config(kubeconfig=str(kube_cluster.kubeconfig))
    # the front-proxy CA did not sign the serving certificate
    wrong = ClientConfig(
        server=files.server,
        ca_file=str(kube_cluster.front_proxy_ca_file),
        cert_file=files.cert_file,
        key_file=files.key_file,
    )

    async def main() -> None:
        async with KubeClient(wrong, timeout=5) as client:
            await client.get("/version")

    with pytest.raises(Exception, match=r"(?i)certificate"):
        asyncio.run(main())


def test_token_file_status_errors_and_rotation(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    token = kube_cluster.service_account_token(kube_namespace, "client-test")
    files = load_config(kubeconfig=str(kube_cluster.kubeconfig))
    token_file = tmp_path / "token"
    token_file.write_text("not-a-token")
    config = ClientConfig(server=files.server, ca_file=files.ca_file, token_file=str(token_file))

    async def main() -> None:
        async with KubeClient(config) as client:
            with pytest.raises(ApiError) as err:
                await client.get("/api/v1/namespaces")
            assert err.value.status == 401
            token_file.write_text(token)  # the kubelet rotated the projected token
            client._token_read_at -= 3600  # as if the re-read period had passed
            with pytest.raises(ApiError) as err:
                await client.get(f"/api/v1/namespaces/{kube_namespace}/secrets")
            assert (err.value.status, err.value.reason) == (403, "Forbidden")
            assert err.value.body["kind"] == "Status" and "client-test" in err.value.message

    asyncio.run(main())


def test_pagination_apply_patch_delete(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    config = load_config(kubeconfig=str(kube_cluster.kubeconfig))
    collection = resource_path(group="", version="v1", resource="configmaps", namespace=kube_namespace)

    async def main() -> None:
        async with KubeClient(config) as client:
            for i in range(25):
                await client.create(collection, {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}})
            items, _ = await client.list(collection, limit=10)
            assert sorted(o["metadata"]["name"] for o in items) == sorted(f"cm-{i}" for i in range(25))

            obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "applied", "namespace": kube_namespace},
                "data": {"a": "1"},
            }
            dry = await client.apply(
                f"{collection}/applied", obj, field_manager="panopticon-test", dry_run=True
            )
            assert dry["data"] == {"a": "1"}
            with pytest.raises(ApiError) as err:
                await client.get(f"{collection}/applied")
            assert err.value.status == 404
            applied = await client.apply(f"{collection}/applied", obj, field_manager="panopticon-test")
            managers = {m["manager"] for m in applied["metadata"]["managedFields"]}
            assert managers == {"panopticon-test"}
            patched = await client.patch(f"{collection}/applied", {"data": {"b": "2"}})
            assert patched["data"] == {"a": "1", "b": "2"}
            with pytest.raises(ApiError) as err:
                await client.delete(f"{collection}/applied", preconditions={"uid": "not-the-uid"})
            assert err.value.status == 409
            assert (
                await client.delete(
                    f"{collection}/applied", preconditions={"uid": applied["metadata"]["uid"]}
                )
                is not None
            )
            assert await client.delete(f"{collection}/applied") is None

    asyncio.run(main())
