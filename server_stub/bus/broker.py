"""A RabbitMQ broker of its own on loopback, for trying the site bus, for tests and for benches.

``LocalBroker`` runs Debian's ``rabbitmq-server`` (``apt-get install rabbitmq-server``; the
package's own service is not used) as a private node: its own node name, AMQP port, Erlang
distribution port and ``epmd`` port, all bound to 127.0.0.1, and every file (Erlang cookie, Mnesia
and queue data, logs) under one directory. Nothing of the machine's own broker, if any, is
touched, and several can run side by side.

Traps it handles (seen here): the node takes 6 s (17 s on a loaded machine) to accept AMQP
connections (``start()`` waits for the AMQP greeting, with a deadline); ``epmd`` outlives the node
(this class starts its own ``epmd`` in the foreground and stops it); the node name is not on any
command line (the node runs in a process group of its own, which is what ``kill()``, ``freeze()``
and ``stop()`` signal, and ``pids()`` lists).

Ports: the three ports are picked free (bound to port 0 and released) just before the start, so
another program can take one in between. A taken port makes ``epmd`` or the node exit at once, and
``start()`` then picks new ports and tries again (``PORT_TRIES`` times). ``restart()`` after
``kill()`` keeps the ports (clients hold the URL) and fails with ``BrokerError`` if one was taken.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from .topology import definitions, site_user

RABBITMQ_BIN = Path(os.environ.get("RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
EPMD = os.environ.get("EPMD", "epmd")
START_DEADLINE = 60.0  # seconds; a start takes ~6 s here, up to 17 s seen on a loaded machine
STOP_DEADLINE = 20.0
PORT_TRIES = 4
# How a taken port reads in the node's output: AMQP and epmd say EADDRINUSE; the Erlang
# distribution listener, bound first, says ``dist_port_already_used`` (a CI run met that one).
ADDRESS_IN_USE = ("eaddrinuse", "address already in use", "cannot listen", "dist_port_already_used")


class BrokerError(RuntimeError):
    """The broker could not be started, reached or administered (the message says why)."""


class _PortTaken(BrokerError):
    pass


def available() -> bool:
    """Whether Debian's RabbitMQ and Erlang's epmd are installed (``.ci/setup --test`` installs them)."""
    return (RABBITMQ_BIN / "rabbitmq-server").exists() and shutil.which(EPMD) is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def amqp_greets(port: int, timeout: float = 0.5) -> bool:
    """Whether an AMQP 0-9-1 server answers on 127.0.0.1:``port`` (its Connection.Start frame)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            return s.recv(1) == b"\x01"  # frame type 1: a method frame
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
                members.append(int(entry))
    return members


class LocalBroker:
    """One private RabbitMQ node on loopback. ``start()``, then ``url(site)`` for a site's AMQP URL
    once ``add_sites()`` created its user; ``kill()`` + ``restart()`` for fault tests; ``stop()``
    (or leaving the ``with`` block) stops the node and its ``epmd`` and removes the directory it
    made (not one it was given)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, name: str | None = None) -> None:
        self._own_dir = directory is None
        self.dir = Path(tempfile.mkdtemp(prefix="rabbitmq-") if directory is None else directory)
        self.nodename = f"{name or 'bus'}-{uuid.uuid4().hex[:10]}@localhost"
        self.amqp_port = self.dist_port = self.epmd_port = 0
        self.passwords: dict[str, str] = {}
        self.startup_seconds: float | None = None  # of the last (re)start: launch until AMQP greets
        self._node: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._node_pids: set[int] = set()

    # ------------------------------------------------------------------ life cycle

    def start(self, deadline: float = START_DEADLINE) -> LocalBroker:
        """Start epmd and the node on fresh free ports; return once the node accepts AMQP
        connections. Raises ``BrokerError`` (with the node's last output) when it cannot."""
        if not available():
            raise BrokerError(f"RabbitMQ is not installed ({RABBITMQ_BIN}/rabbitmq-server, {EPMD}): "
                              "run `.ci/setup --test` or `apt-get install rabbitmq-server`")
        for attempt in range(PORT_TRIES):
            self.amqp_port, self.dist_port, self.epmd_port = _free_port(), _free_port(), _free_port()
            try:
                self._launch(deadline)
                return self
            except _PortTaken:
                self._terminate(signal.SIGKILL)
                if attempt == PORT_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def restart(self, deadline: float = START_DEADLINE) -> None:
        """Start the node again on the same ports and data (after ``kill()``): durable queues and
        the messages in them, users and permissions come back."""
        if self._node is not None and self._node.poll() is None:
            raise BrokerError("the broker is running: kill() or stop() it first")
        self._launch(deadline)

    def kill(self) -> None:
        """SIGKILL the node (every process of its group), as a crash would; epmd stays up, as it
        does when a real node dies."""
        if self._node is not None:
            self._signal_group(signal.SIGKILL)
            self._node.wait()
            self._wait_gone(self._node_pids, STOP_DEADLINE)

    def freeze(self) -> None:
        """SIGSTOP the node (a hung broker: connections stay open, nothing answers); ``thaw()``."""
        self._signal_group(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_group(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the node (SIGTERM: a clean shutdown; SIGKILL after ``STOP_DEADLINE``) and epmd, and
        remove the directory if this object made it. Safe to call twice."""
        self._terminate(signal.SIGTERM)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._node is not None and self._node.poll() is None

    def pids(self) -> list[int]:
        """The live processes this broker started: epmd and every process of the node's group."""
        pids = [pid for pid in self._node_pids if _alive(pid)]
        if self._node is not None:
            pids.extend(p for p in _group_members(self._node.pid) if p not in pids)
        if self._epmd is not None and _alive(self._epmd.pid):
            pids.append(self._epmd.pid)
        return sorted(set(pids))

    # ------------------------------------------------------------------ sites

    def url(self, site: str, *, heartbeat: int = 5) -> str:
        """The AMQP URL a site connects with (its own user; ``add_sites()`` first)."""
        user = site_user(site)
        return (f"amqp://{quote(user, safe='')}:{quote(self.passwords[site], safe='')}@127.0.0.1:{self.amqp_port}/"
                f"?heartbeat={heartbeat}&name={quote(user, safe='')}")

    def admin_url(self) -> str:
        # guest/guest: RabbitMQ's default administrator, which it lets in from loopback only.
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    def add_sites(self, sites: Mapping[str, str] | list[str]) -> None:
        """Create each site's user, permissions and inbox (``topology.definitions``) with one
        ``rabbitmqctl import_definitions``. A list of names gets random passwords."""
        passwords = dict(sites) if isinstance(sites, Mapping) else {s: uuid.uuid4().hex for s in sites}
        path = self.dir / f"definitions-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(definitions(passwords)))
        self.ctl("import_definitions", str(path))
        self.passwords.update(passwords)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl`` against this node; its output, or ``BrokerError`` with it."""
        try:
            done = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-q", *args], env=self._env(), cwd=self.dir,
                                  capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise BrokerError(f"rabbitmqctl {' '.join(args)}: no answer within {timeout} s") from e
        out = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0:
            raise BrokerError(f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): {out.strip()}")
        return out

    def output(self, lines: int = 40) -> str:
        """The last lines the node printed (for an error message or a failed test)."""
        with contextlib.suppress(OSError):
            return "\n".join((self.dir / "node.out").read_text(errors="replace").splitlines()[-lines:])
        return ""

    # ------------------------------------------------------------------ internals

    def _env(self) -> dict[str, str]:
        d = self.dir
        loopback = "-kernel inet_dist_use_interface {127,0,0,1}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update({
            "HOME": str(d),  # the Erlang cookie the node and rabbitmqctl share: $HOME/.erlang.cookie
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": loopback,
            "RABBITMQ_CTL_ERL_ARGS": loopback,
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "node.pid"),
            # None of the machine's files under /etc/rabbitmq: ours, or none.
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
        })
        return env

    def _write_config(self) -> None:
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")  # no plugins: the fastest start
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            # A test machine's disk may be nearly full: the default 50 MB limit would block every
            # publisher (confirms never come), which reads as a hung test, not as a full disk.
            "disk_free_limit.absolute = 1MB\n"
        )

    def _launch(self, deadline: float) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        env = self._env()
        out = open(self.dir / "node.out", "ab")  # handed to the child processes, closed here
        try:
            if self._epmd is None or self._epmd.poll() is not None:
                # Foreground epmd of our own (not -daemon): we have its PID, and it dies with stop().
                self._epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                              env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              start_new_session=True)
            started = time.monotonic()
            self._node = subprocess.Popen([str(RABBITMQ_BIN / "rabbitmq-server")], env=env, cwd=self.dir, stdout=out,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            out.close()
        end = started + deadline
        while True:
            self._node_pids.update(_group_members(self._node.pid))
            if self._epmd.poll() is not None:
                raise self._failed("epmd exited", taken=self._port_taken())
            if self._node.poll() is not None:
                raise self._failed(f"rabbitmq-server exited with {self._node.returncode}", taken=self._port_taken())
            if amqp_greets(self.amqp_port):
                self.startup_seconds = time.monotonic() - started
                self._node_pids.update(_group_members(self._node.pid))
                return
            if time.monotonic() > end:
                self._terminate(signal.SIGKILL)
                raise BrokerError(f"the broker did not accept AMQP connections within {deadline} s:\n{self.output()}")
            time.sleep(0.05)  # polling a socket that is not listening yet: nothing to wait on

    def _port_taken(self) -> bool:
        text = self.output(200).lower()
        return any(marker in text for marker in ADDRESS_IN_USE)

    def _failed(self, what: str, *, taken: bool) -> BrokerError:
        kind = _PortTaken if taken else BrokerError
        return kind(f"{what} (ports amqp {self.amqp_port}, dist {self.dist_port}, epmd {self.epmd_port}):\n"
                    f"{self.output()}")

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._node is None:
            return
        self._node_pids.update(_group_members(self._node.pid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._node.pid, sig)
        for pid in self._node_pids:  # anything that left the group (none known) still gets it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    @staticmethod
    def _wait_gone(pids: set[int], deadline: float) -> bool:
        end = time.monotonic() + deadline
        while any(_alive(p) for p in pids):
            if time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    def _terminate(self, sig: signal.Signals) -> None:
        if self._node is not None:
            self._signal_group(sig)
            self._signal_group(signal.SIGCONT)  # a frozen node handles its SIGTERM only once it runs
            try:
                self._node.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._node.wait()
            if not self._wait_gone(self._node_pids, STOP_DEADLINE):
                self._signal_group(signal.SIGKILL)
                self._wait_gone(self._node_pids, STOP_DEADLINE)
            self._node_pids = {p for p in self._node_pids if _alive(p)}
        if self._epmd is not None:
            self._epmd.kill()
            self._epmd.wait()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``python -m server_stub.bus.broker --site A --site B --site C``: run a private broker for
    trying the site bus; print each site's AMQP URL; stop it (epmd included) on Ctrl-C or SIGTERM."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m server_stub.bus.broker", description=main.__doc__)
    parser.add_argument("--site", action="append", default=[], metavar="NAME", help="a site to provision (repeatable)")
    parser.add_argument("--dir", type=Path, help="data directory (default: a temporary one, removed at the end)")
    args = parser.parse_args(argv)
    broker = LocalBroker(args.dir, name="try")
    stop = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        broker.start()
        broker.add_sites(args.site or ["A", "B", "C"])
        print(f"broker {broker.nodename} ready in {broker.startup_seconds:.1f} s; data in {broker.dir}", flush=True)
        for site in broker.passwords:
            print(f"site {site}: {broker.url(site)}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    except BrokerError as e:
        print(f"error: {e}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, stop)
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
