import socket

import pytest
from pytest_socket import SocketConnectBlockedError


def test_sockets_other_than_allowed_loopback_are_blocked():
    # 127.0.0.2 is loopback (no traffic leaves the machine) but not in the allow-list,
    # so the guard must refuse it exactly as it would refuse a remote host.
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("127.0.0.2", 9), timeout=1)


def test_loopback_is_allowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2) as client:
            accepted, _ = server.accept()
            with accepted:
                client.sendall(b"ping")
                assert accepted.recv(4) == b"ping"  # a real exchange over loopback, not just a connect
