"""Downloads against a local HTTP server on 127.0.0.1 serving fixture archives."""

import hashlib
import http.server
import tarfile
import threading
from typing import ClassVar

import pytest

import scalarize.benchmarks.cifar_stl as cifar_stl
from scalarize.benchmarks import load_benchmark
from scalarize.benchmarks.download import Archive, download
from scalarize.errors import ScalarizeError
from tests.benchmarks.test_cifar_stl import _write_cifar, _write_stl


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    ranges: ClassVar[list[str]] = []

    def do_GET(self):
        body = self.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        status, start = 200, 0
        if "Range" in self.headers:
            self.ranges.append(self.headers["Range"])
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    _RangeHandler.files, _RangeHandler.ranges = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _RangeHandler
    httpd.shutdown()


def _archive(tmp_path, folder_name):
    source = tmp_path / "src"
    if not (source / folder_name).exists():
        (_write_cifar if folder_name.startswith("cifar") else _write_stl)(source)
    path = tmp_path / f"{folder_name}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source / folder_name, arcname=folder_name)
    return path.read_bytes()


def test_download_unpacks_and_loads(tmp_path, server, monkeypatch):
    base, handler = server
    archives = []
    for folder, name in [("cifar-10-batches-py", "cifar-10-python.tar.gz"),
                         ("stl10_binary", "stl10_binary.tar.gz")]:
        body = _archive(tmp_path, folder)
        handler.files[name] = body
        archives.append(Archive(f"{base}/{name}", hashlib.md5(body).hexdigest(), folder))
    monkeypatch.setattr(cifar_stl, "ARCHIVES", tuple(archives))
    root = tmp_path / "data"
    data = load_benchmark("cifar10_stl10", view="mdl", root=root, download=True)
    assert data.domains == ("cifar10", "stl10") and len(data.splits["test"]) == 6 + 5
    # a second load finds the unpacked folders and downloads nothing
    handler.files.clear()
    load_benchmark("cifar10_stl10", view="mdl", root=root, download=True)


def test_corrupted_archive_is_rejected_and_nothing_is_unpacked(tmp_path, server):
    base, handler = server
    body = _archive(tmp_path, "stl10_binary")
    handler.files["stl.tar.gz"] = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
    dest = tmp_path / "dl" / "stl.tar.gz"
    with pytest.raises(ScalarizeError, match="corrupted"):
        download(f"{base}/stl.tar.gz", dest, hashlib.md5(body).hexdigest(), progress=False)
    assert not dest.exists() and not dest.with_name("stl.tar.gz.part").exists()


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server):
    base, handler = server
    body = _archive(tmp_path, "cifar-10-batches-py")
    handler.files["c.tar.gz"] = body
    dest = tmp_path / "dl" / "c.tar.gz"
    dest.parent.mkdir()
    dest.with_name("c.tar.gz.part").write_bytes(body[:1000])
    download(f"{base}/c.tar.gz", dest, hashlib.md5(body).hexdigest(), progress=False)
    assert handler.ranges == ["bytes=1000-"]
    assert dest.read_bytes() == body


def test_unreachable_server_is_a_clear_error(tmp_path, server):
    base, _ = server
    with pytest.raises(ScalarizeError, match="run the same command again to resume"):
        download(f"{base}/missing.tar.gz", tmp_path / "x.tar.gz", "0" * 32, progress=False)


def _domain_zip(tmp_path, domain):
    import zipfile

    from scalarize.benchmarks.fixtures import write_domainnet

    source = tmp_path / "dn-src"
    write_domainnet(source, per_split=(6, 3), domains=(domain,))
    path = tmp_path / f"{domain}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted((source / domain).rglob("*.jpg")):
            archive.write(file, file.relative_to(source))
    lists = {f"domainnet/txt/{domain}_{s}.txt": (source / f"{domain}_{s}.txt").read_bytes()
             for s in ("train", "test")}
    return path.read_bytes(), lists


def test_domainnet_download_checks_zip_crcs_and_loads(tmp_path, server, monkeypatch):
    import scalarize.benchmarks.domainnet as domainnet

    base, handler = server
    monkeypatch.setattr(domainnet, "BASE_URL", base)
    for domain in ("real", "clipart"):
        body, lists = _domain_zip(tmp_path, domain)
        handler.files[domainnet.ZIP_PATHS[domain]] = body
        handler.files.update(lists)
    assert domainnet.ZIP_PATHS["clipart"] == "groundtruth/clipart.zip"
    root = tmp_path / "data"
    data = load_benchmark("domainnet", view="mdl", root=root, domains=["real", "clipart"],
                          image_size=8, download=True)
    assert data.domains == ("real", "clipart") and len(data.splits["test"]) == 6
    handler.files.clear()  # everything is there now: nothing is fetched again
    load_benchmark("domainnet", view="mdl", root=root, domains=["real", "clipart"],
                   image_size=8, download=True)


def test_domainnet_corrupted_zip_is_deleted_before_unpacking(tmp_path, server, monkeypatch):
    import scalarize.benchmarks.domainnet as domainnet

    base, handler = server
    monkeypatch.setattr(domainnet, "BASE_URL", base)
    body, lists = _domain_zip(tmp_path, "sketch")
    middle = len(body) // 2  # inside a stored JPEG's bytes
    handler.files["sketch.zip"] = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
    handler.files.update(lists)
    root = tmp_path / "data"
    with pytest.raises(ScalarizeError, match="fails its CRC-32 check"):
        load_benchmark("domainnet", view="mdl", root=root, domains=["sketch"], download=True)
    assert not (root / "sketch").exists()
    assert not (root / ".downloads" / "sketch.zip").exists()


@pytest.mark.parametrize("name,where", [("celeba", "mmlab.ie.cuhk.edu.hk"),
                                        ("taskonomy", "StanfordVL/taskonomy")])
def test_data_sets_without_a_download_say_where_to_get_them(tmp_path, name, where):
    with pytest.raises(ScalarizeError, match=f"cannot be downloaded for you.*{where}"):
        load_benchmark(name, root=tmp_path, download=True)
