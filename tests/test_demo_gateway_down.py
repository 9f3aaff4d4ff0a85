"""Issue 26: the demo plays a gateway that is not running. *gateway down* closes the
simulator's port (connections refused: ``gateway_down``) until a scenario is chosen,
which listens again on the same port with the control API working."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from cpgw_tray.model.status import State
from cpgw_tray.simulator import SimClock, Simulator

from .conftest import control, wait_for
from .test_sim_clock import check, demo_tray, simulate


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def ended(conn: ssl.SSLSocket) -> bool:
    """The connection was closed or reset (not timed out) with nothing sent."""
    try:
        return conn.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.e2e  # four checks paced by the real rate limits
def test_gateway_down_refuses_until_a_scenario_is_chosen() -> None:
    clock = SimClock()
    with Simulator(0, scenario="ready", rate_limit=False, wall=clock) as sim:
        tray, backend = demo_tray(clock, sim, "na")
        assert check(tray, backend) is State.READY  # a kept-alive connection in the pool
        port = sim.port
        simulate(backend, "gateway down:")
        assert refused(port) and not sim.listening
        assert check(tray, backend) is State.GATEWAY_DOWN
        menu = next(e for e in backend.menu if e.text == "Simulate").submenu
        assert [e.text.split(":")[0] for e in menu if e.checked] == ["gateway down"]
        simulate(backend, "logged_out:")
        assert sim.port == port and not refused(port)
        assert check(tray, backend) is State.LOGGED_OUT
        assert control(sim.url, "/sim/state", {"scenario": "ready"})["scenario"] == "ready"
        assert check(tray, backend) is State.READY
        tray.client.close()


def test_a_hung_request_ends_with_the_port_and_hang_holds_again_after() -> None:
    with Simulator(0, scenario="hang", rate_limit=False) as sim:
        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
        with tls.wrap_socket(raw) as hung:
            hung.sendall(b"GET /v1/api/iserver/auth/status HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: sim.requests(), 5)  # the request is held
            started = time.monotonic()
            sim.go_down()
            assert ended(hung) and time.monotonic() - started < 4  # at once, no reply
        assert refused(sim.port)
        sim.come_up()
        assert not sim.released.is_set()  # still hanging: requests are kept open again
        sim.come_up()  # already up: nothing to do
        assert sim.listening


def test_a_port_taken_while_down_is_said_and_never_shared() -> None:
    clock = SimClock()
    with Simulator(0, scenario="ready", rate_limit=False, wall=clock) as sim:
        tray, backend = demo_tray(clock, sim, "na")
        simulate(backend, "gateway down:")
        with socket.socket() as other:  # another program listens there meanwhile
            other.bind(("0.0.0.0", sim.port))
            other.listen()
            simulate(backend, "ready:")
            backend.drain()
            assert not sim.listening
            said = [e.text for e in backend.menu if "cannot listen again" in e.text]
            assert said and "in use" in said[0], said
        tray.client.close()
