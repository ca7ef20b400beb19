"""The one loopback port helper every process the harness starts takes its port from."""

from __future__ import annotations

import socket


from harness.ports import LOOPBACK, accepting, free_port



def test_a_free_port_can_be_bound_on_loopback_and_nothing_answers_on_it_yet() -> None:
    port = free_port()
    assert not accepting(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind((LOOPBACK, port))
        server.listen()
        assert accepting(port)
