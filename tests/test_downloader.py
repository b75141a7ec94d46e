"""The resumable downloader against a real HTTP server on 127.0.0.1."""

import hashlib
import http.server
import os
import threading

import pytest

from models.checksum import ChecksumError
from models.downloader import DownloadCancelled, DownloadError, download


class _Server:
    """Serves one in-memory file with Range support; can cut the first responses short."""

    def __init__(self, payload: bytes, cut_after: int | None = None, cuts: int = 1,
                 honour_range: bool = True):
        self.payload = payload
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.honour_range = honour_range
        self.ranges: list = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = 0
                if rng and outer.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(outer.payload):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                else:
                    self.send_response(200)
                body = outer.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_after is not None and outer.cuts_left > 0:
                    outer.cuts_left -= 1
                    self.wfile.write(body[: outer.cut_after])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # cut the connection mid-body
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.bin"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def payload():
    return os.urandom(3 * 1024 * 1024 + 123)


def test_resumes_after_a_cut_connection(tmp_path, payload):
    sha = hashlib.sha256(payload).hexdigest()
    seen = []
    with _Server(payload, cut_after=1_000_000) as srv:
        out = download(srv.url, tmp_path / "m.bin", sha256=sha, size=len(payload),
                       progress=lambda d, t: seen.append((d, t)))
    assert out.read_bytes() == payload
    assert srv.ranges[0] is None
    assert srv.ranges[1] == "bytes=1000000-"  # resumed where the cut left it, not from zero
    assert seen[-1] == (len(payload), len(payload))
    assert not (tmp_path / "m.bin.part").exists()


def test_partial_file_is_kept_and_resumed_by_a_later_call(tmp_path, payload):
    sha = hashlib.sha256(payload).hexdigest()
    with _Server(payload, cut_after=500_000) as srv:
        with pytest.raises(DownloadError, match="kept"):
            download(srv.url, tmp_path / "m.bin", sha256=sha, retries=0)
        assert (tmp_path / "m.bin.part").stat().st_size == 500_000
        assert not (tmp_path / "m.bin").exists()
        download(srv.url, tmp_path / "m.bin", sha256=sha, retries=0)
    assert srv.ranges == [None, "bytes=500000-"]
    assert (tmp_path / "m.bin").read_bytes() == payload


def test_server_without_range_support_restarts_cleanly(tmp_path, payload):
    sha = hashlib.sha256(payload).hexdigest()
    with _Server(payload, cut_after=700_000, honour_range=False) as srv:
        download(srv.url, tmp_path / "m.bin", sha256=sha)
    assert (tmp_path / "m.bin").read_bytes() == payload


def test_checksum_mismatch_is_discarded(tmp_path, payload):
    with _Server(payload) as srv:
        with pytest.raises(ChecksumError, match="discarded"):
            download(srv.url, tmp_path / "m.bin", sha256="0" * 64)
    assert not (tmp_path / "m.bin").exists()
    assert not (tmp_path / "m.bin.part").exists()


def test_cancel_keeps_the_partial_file(tmp_path, payload):
    cancel = threading.Event()
    cancel.set()
    with _Server(payload) as srv:
        with pytest.raises(DownloadCancelled):
            download(srv.url, tmp_path / "m.bin", sha256="0" * 64, cancel=cancel)
    assert not (tmp_path / "m.bin").exists()


def test_only_http_urls(tmp_path):
    with pytest.raises(DownloadError, match="only http"):
        download("file:///etc/passwd", tmp_path / "x", sha256="0" * 64)


def test_catalog_url_source_installs_through_the_downloader(scratch_models):
    from models import catalog, installer, inventory

    payload = b"GGUF" + os.urandom(2 * 1024 * 1024)
    sha = hashlib.sha256(payload).hexdigest()
    with _Server(payload, cut_after=300_000) as srv:
        spec = catalog.ModelSpec(
            name="downloaded-model", role="llm", title="test", layout="file",
            source=catalog.UrlSource(srv.url),
            files=(catalog.ModelFile("downloaded.gguf", sha, len(payload)),))
        seen = []
        path = installer.install(spec, progress=lambda name, d, t: seen.append((name, d, t)))
    assert srv.ranges == [None, "bytes=300000-"]
    assert path == scratch_models / "downloaded-model" / "downloaded.gguf"
    assert path.read_bytes() == payload
    assert seen[-1] == ("downloaded-model", len(payload), len(payload))
    assert inventory.problems(spec) == []
