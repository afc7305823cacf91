"""Push, pull, list and delete images on a real registry, each test with its own repository.

The ``repo`` fixture's client is held across ``yield`` and the repository's manifests are deleted in its
teardown, as a natural suite would write it. Any leak verdict here is a false positive, or a real leak in the
registry, to be told apart.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.usefixtures("pytest_goleak")
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def repo(goleak_service) -> Iterator[tuple[httpx.Client, str]]:  # type: ignore[no-untyped-def]
    name = f"t/{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=goleak_service.url, timeout=30, trust_env=False) as client:
        yield client, name
        tags = client.get(f"/v2/{name}/tags/list")
        for tag in (tags.json().get("tags") or []) if tags.status_code == 200 else []:
            head = client.head(f"/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST})
            digest = head.headers.get("Docker-Content-Digest")
            if digest:
                client.delete(f"/v2/{name}/manifests/{digest}")


def with_digest(location: str, digest: str) -> str:
    # The upload's location carries its state in the query string, which httpx's params= would replace.
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    done = client.put(with_digest(location, digest), content=data)
    assert done.status_code == 201, done.text
    return digest


def push_image(client: httpx.Client, name: str, tag: str, layers: list[bytes]) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config),
            "digest": push_blob(client, name, config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": len(layer),
                "digest": push_blob(client, name, layer),
            }
            for layer in layers
        ],
    }
    body = json.dumps(manifest).encode()
    put = client.put(f"/v2/{name}/manifests/{tag}", content=body, headers={"Content-Type": MANIFEST})
    assert put.status_code == 201, put.text
    return put.headers["Docker-Content-Digest"]


@pytest.mark.parametrize("size", [1, 1024, 65536, 1 << 20, 4 << 20, 16 << 20, 64 << 20])
def test_push_and_pull_a_blob(repo, size: int) -> None:  # type: ignore[no-untyped-def]
    client, name = repo
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    digest = push_blob(client, name, data)
    pulled = client.get(f"/v2/{name}/blobs/{digest}")
    assert pulled.status_code == 200
    assert pulled.content == data


@pytest.mark.parametrize("layers", [1, 2, 5])
def test_push_and_pull_an_image(repo, layers: int) -> None:  # type: ignore[no-untyped-def]
    client, name = repo
    digest = push_image(client, name, "v1", [uuid.uuid4().bytes * 64 for _ in range(layers)])
    got = client.get(f"/v2/{name}/manifests/v1", headers={"Accept": MANIFEST})
    assert got.status_code == 200
    assert got.headers["Docker-Content-Digest"] == digest
    assert len(got.json()["layers"]) == layers


@pytest.mark.parametrize("tags", [1, 3, 8])
def test_tags_list(repo, tags: int) -> None:  # type: ignore[no-untyped-def]
    client, name = repo
    layer = uuid.uuid4().bytes
    for i in range(tags):
        push_image(client, name, f"v{i}", [layer])
    assert sorted(client.get(f"/v2/{name}/tags/list").json()["tags"]) == sorted(f"v{i}" for i in range(tags))


@pytest.mark.parametrize("n", range(5))
def test_catalog(repo, n: int) -> None:  # type: ignore[no-untyped-def]
    client, name = repo
    push_image(client, name, "latest", [uuid.uuid4().bytes])
    assert client.get("/v2/_catalog", params={"n": 1000}).status_code == 200


@pytest.mark.parametrize("n", range(5))
def test_head_and_missing(repo, n: int) -> None:  # type: ignore[no-untyped-def]
    client, name = repo
    digest = push_blob(client, name, uuid.uuid4().bytes * (n + 1))
    assert client.head(f"/v2/{name}/blobs/{digest}").status_code == 200
    missing = "sha256:" + "0" * 64
    assert client.get(f"/v2/{name}/blobs/{missing}").status_code == 404
    assert client.get(f"/v2/{name}/manifests/nope").status_code == 404


@pytest.mark.parametrize("n", range(5))
def test_delete_a_manifest(repo, n: int) -> None:  # type: ignore[no-untyped-def]
    client, name = repo
    digest = push_image(client, name, "gone", [uuid.uuid4().bytes])
    assert client.delete(f"/v2/{name}/manifests/{digest}").status_code == 202
    assert client.get(f"/v2/{name}/manifests/{digest}", headers={"Accept": MANIFEST}).status_code == 404


@pytest.mark.parametrize("chunks", [2, 4, 8])
def test_chunked_upload(repo, chunks: int) -> None:  # type: ignore[no-untyped-def]
    client, name = repo
    parts = [uuid.uuid4().bytes * 512 for _ in range(chunks)]
    data = b"".join(parts)
    location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
    offset = 0
    for part in parts:
        headers = {"Content-Range": f"{offset}-{offset + len(part) - 1}", "Content-Type": "application/octet-stream"}
        patched = client.patch(location, content=part, headers=headers)
        assert patched.status_code == 202, patched.text
        location, offset = patched.headers["Location"], offset + len(part)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert client.put(with_digest(location, digest)).status_code == 201
    assert client.get(f"/v2/{name}/blobs/{digest}").content == data


@pytest.mark.parametrize("n", range(4))
def test_cancelled_upload(repo, n: int) -> None:  # type: ignore[no-untyped-def]
    client, name = repo
    location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
    assert client.delete(location).status_code == 204


def test_version_check(pytest_goleak) -> None:  # type: ignore[no-untyped-def]
    assert pytest_goleak.client.get("/v2/").status_code == 200
