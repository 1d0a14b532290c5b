"""Network faults the simulator cannot make, through a fault-injecting proxy (:mod:`faulty_proxy`).

Why these: a connection dropped without an answer, an answer that never comes (past the read
timeout), and a transfer broken off mid-body — chunked or short of its ``Content-Length`` — are
what a district's firewall, load balancer or a restarting gateway do to a night-long sync, and
each reaches the client as a different exception. Each is a transient fault: the sync must give
exactly the reference (:func:`reference_sync.assert_survived_or_failed_cleanly`). A gateway that
drops every data request fails every scope cleanly, keeping the previous picture. A gateway's
502/504 HTML page is in the fault matrix: the simulator sends those itself.
"""

from __future__ import annotations

import pytest
from faulty_proxy import BREAKS, faulty_proxy
from reference_sync import ALL, APIS, assert_survived_or_failed_cleanly, sync, write_config

READ_TIMEOUT = {"read_timeout_s": 1.0}
"""The stalled answers wait 3 s: well past the client's read timeout, here 1 s."""


def _params():
    for fault in BREAKS:
        for api in APIS:
            fast = fault == "drop" and api == "oneroster-1.1"
            yield pytest.param(fault, api, id=f"{fault}-{api}", marks=() if fast else (pytest.mark.reliability,))


@pytest.mark.parametrize("fault, api", list(_params()))
def test_a_broken_transfer_is_retried_and_the_sync_gives_the_reference(fault, api, sim, reference, tmp_path):
    before = reference(api)
    with faulty_proxy(sim.base_url, fault, every=5) as proxy:
        config = write_config(tmp_path, api, proxy.url, **(READ_TIMEOUT if fault == "stall" else {}))
        warehouse = before.copy_to(tmp_path)
        done = sync(config)
    assert proxy.broken >= 3, "the proxy must have broken some answers"
    assert_survived_or_failed_cleanly(done, warehouse, before)


@pytest.mark.reliability
@pytest.mark.parametrize("api", APIS)
def test_a_gateway_dropping_every_data_request_fails_every_scope_cleanly(api, sim, reference, tmp_path):
    before = reference(api)
    with faulty_proxy(sim.base_url, "drop", every=1) as proxy:
        config = write_config(tmp_path, api, proxy.url)
        warehouse = before.copy_to(tmp_path)
        done = sync(config)
    assert proxy.broken == proxy.data_requests > 0
    assert_survived_or_failed_cleanly(done, warehouse, before, fails=ALL, why="closed connection without response")
