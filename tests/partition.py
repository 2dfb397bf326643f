"""A network partition that drops packets, for the partition tests.

The processes under test run in a network namespace of the test's own, joined to this one by a veth pair; they
reach PostgreSQL, Redis and S3 through relays that listen on this side's veth address (the services themselves
listen on loopback only). ``cut()`` adds blackhole routes on both sides, so every packet between the two is
dropped without a word (no RST, no ICMP): connections stay open and nothing flows, as when a switch or a security
group drops traffic. ``heal()`` removes the routes. Needs root (CI and these machines run as root)."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlparse, urlunparse

from tests.helpers import CuttableProxy


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(("netns", "exec", ns, "ip") if ns else ()), *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


class Partition:
    def __init__(self):
        n = os.getpid() % 250
        self.ns, self.host_if, self.ns_if = f"adqp{n}", f"adqp{n}a", f"adqp{n}b"
        self.host_ip, self.ns_ip = f"10.231.{n}.1", f"10.231.{n}.2"
        self.relays: list[CuttableProxy] = []
        self.down()  # a namespace left by a killed run
        _ip("netns", "add", self.ns)
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        _ip("link", "set", self.ns_if, "netns", self.ns)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if, ns=self.ns)
        _ip("link", "set", self.ns_if, "up", ns=self.ns)
        _ip("link", "set", "lo", "up", ns=self.ns)

    @property
    def prefix(self) -> list[str]:
        """Run a command inside the namespace."""
        return ["ip", "netns", "exec", self.ns]

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by a relay's, reachable from inside the namespace."""
        parsed = urlparse(url)
        relay = CuttableProxy(parsed.port, listen_host=self.host_ip)
        self.relays.append(relay)
        netloc = parsed.netloc.rsplit("@", 1)
        host = f"{self.host_ip}:{relay.port}"
        return urlunparse(parsed._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    def cut(self) -> None:
        _ip("route", "add", "blackhole", f"{self.ns_ip}/32")
        _ip("route", "add", "blackhole", f"{self.host_ip}/32", ns=self.ns)

    def forget(self) -> None:
        """The far side drops every connection while the cut lasts (a NAT or load balancer that timed the flows
        out, a server restarted): its FIN is lost in the cut, so a client waiting for an answer hears nothing, ever,
        unless a timeout or a keepalive of its own ends the wait."""
        for relay in self.relays:
            relay.cut()
            relay.restore()

    def heal(self) -> None:
        subprocess.run(["ip", "route", "del", "blackhole", f"{self.ns_ip}/32"], capture_output=True)
        subprocess.run([*self.prefix, "ip", "route", "del", "blackhole", f"{self.host_ip}/32"], capture_output=True)

    def down(self) -> None:
        for relay in self.relays:
            relay.cut()
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
