"""The suite's network guard: non-loopback connections fail, loopback works."""

import socket
import threading

import pytest
from conftest import NetworkBlocked


def test_public_address_is_refused_before_any_packet(no_network):
    calls = []
    # swap the real connect for a recorder, so even a broken guard could send nothing
    no_network.real_connect = lambda sock, addr: calls.append(addr)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkBlocked):
            s.connect(("93.184.216.34", 80))
        with pytest.raises(NetworkBlocked):
            s.connect(("example.org", 443))
    finally:
        s.close()
    assert calls == []
    assert len(no_network.attempts) == 2
    no_network.attempts.clear()  # expected here; any other test doing this fails


def test_loopback_is_allowed():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    t = threading.Thread(target=lambda: srv.accept()[0].sendall(b"ok"))
    t.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        assert c.recv(2) == b"ok"
    t.join()
    srv.close()
