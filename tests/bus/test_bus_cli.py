"""``interaction-server cluster --sites 3 --bus local`` as the README shows it: a private broker with
a user per site, three site processes linked through it, a call submitted at A completed by the
agent at C; Ctrl-C/SIGTERM stops the sites and the broker (docs/multisite.md, "RabbitMQ")."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.server.interaction_steps import agent, carrier, hand_over_and_complete
from tests.server.test_cli import cli
from tests.server.wire import run
from tests.support.rabbitmq import BUS_DEADLINE, require_rabbitmq
from tests.support.servers import ADDRESS_IN_USE, REPO, SECRET, PortInUse, reserve_adjacent_ports, wait_until

pytestmark = pytest.mark.broker

START_DEADLINE = 90.0  # the broker (~7 s, more when loaded), then three interpreters


def start_bus_cluster(base: int) -> tuple[int, subprocess.Popen, list[str]]:
    env = {**os.environ, "INTERACTION_SERVER_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "server_stub", "cluster", "--sites", "3", "--base-port", str(base),
                             "--bus", "local"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()

    def ready() -> bool:
        banner = sum(bool(re.match(r"\s+site [ABC]\s+ws://", line)) for line in list(lines))
        return banner == 3 and sum(": peer link from " in line for line in list(lines)) >= 6

    try:
        wait_until(lambda: ready() or proc.poll() is not None, timeout=START_DEADLINE,
                   message="the broker, the banner and the six links over the bus")
    finally:
        if not ready() and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the broker stops with it
    if ready():
        return base, proc, lines
    proc.wait(30)
    output = "".join(lines)
    raise (PortInUse if ADDRESS_IN_USE in output.lower() else AssertionError)(output)


@pytest.mark.server_processes
@pytest.mark.slow
def test_cluster_on_a_local_broker_hands_a_call_over_and_stops_with_its_broker():
    require_rabbitmq()
    base, proc, lines = start_bus_cluster(reserve_adjacent_ports(3))
    data = next((m.group(1) for line in list(lines) if (m := re.search(r"data in (\S+?);", line))), None)
    try:
        assert data is not None and Path(data).is_dir(), "".join(lines)

        async def scenario():
            urls = {name: f"ws://127.0.0.1:{base + i}" for i, name in enumerate("ABC")}
            desk, epoch = await agent(urls["C"], "1001")
            feed_a, feed_c = await carrier(urls["A"]), await carrier(urls["C"])
            await hand_over_and_complete(feed_a, desk, epoch, feed_c, "1001", timeout=BUS_DEADLINE)

        run(scenario(), timeout=120)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(lines)
        assert not any("Traceback" in line for line in lines), "".join(lines)
        assert not Path(data).exists(), "the broker's data went with it"
    finally:
        if proc.poll() is None:  # SIGTERM first: the cluster stops its broker (a SIGKILL would leave it running)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_self_test_checks_the_bus_with_the_sites_own_user(rabbitmq, bus_sites):
    (site,) = bus_sites(1)
    good = cli("--name", site, "--port", "0", "--bus", rabbitmq.url(site), "--self-test", timeout=60)
    assert good.returncode == 0 and re.search(r"^ok\s+bus: amqp://site-", good.stdout, re.M), good.stdout
    assert rabbitmq.passwords[site] not in good.stdout, "the password is not printed"
    wrong = rabbitmq.url(site).replace(rabbitmq.passwords[site], "not-the-password")
    bad = cli("--name", site, "--port", "0", "--bus", wrong, "--self-test", timeout=60)
    assert re.search(r"^warn\s+bus: .*is the broker up, the site provisioned", bad.stdout, re.M), bad.stdout
