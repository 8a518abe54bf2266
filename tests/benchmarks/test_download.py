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
