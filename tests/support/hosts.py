"""Several "hosts" on one machine: network namespaces (``ip netns``) joined by a bridge of the test's own.

The bridge ``meepo-br<n>`` in the root namespace has ``10.<n>.0.1/24``; host ``i`` is the namespace
``meepo-h<n>-<i>`` with ``10.<n>.0.<i + 2>``, reached over a veth pair. Servers the test starts listen on
``10.<n>.0.1`` only, so traffic stays on the bridge and the namespaces. Commands run in a host through
``ip netns exec`` and ``unshare --uts``, so each host also has its own host name (``h<i>``). Everything made
here is removed in ``remove()``, also after a partial set-up.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def netns_permitted() -> str | None:
    """None when this process may create network namespaces, else why not."""
    name = f"meepo-probe-{os.getpid()}"
    try:
        _ip("netns", "add", name)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        return f"ip netns is not permitted here: {detail.decode(errors='replace').strip() or exc}"
    _ip("netns", "del", name)
    return None


@dataclass
class Hosts:
    count: int
    net: int = field(default_factory=lambda: 200 + os.getpid() % 50)
    made: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"meepo-br{self.net}"

    @property
    def server_address(self) -> str:
        return f"10.{self.net}.0.1"

    def namespace(self, i: int) -> str:
        return f"meepo-h{self.net}-{i}"

    def address(self, i: int) -> str:
        return f"10.{self.net}.0.{i + 2}"

    def _claim_net(self) -> None:
        """Create this run's bridge on the first free net from ``net`` on: a bridge name can exist once, so two
        runs side by side (the test suite runs its databases in parallel) never share a net."""
        start = self.net
        for step in range(50):
            self.net = 200 + (start - 200 + step) % 50
            try:
                _ip("link", "add", self.bridge, "type", "bridge")
            except subprocess.CalledProcessError as exc:
                if b"exists" not in (exc.stderr or b""):
                    raise
                continue
            self.made.append(f"link:{self.bridge}")
            return
        raise RuntimeError("no free net for the test's bridge: 50 meepo-br* bridges exist (left by killed runs?)")

    def create(self) -> Hosts:
        try:
            self._claim_net()
            _ip("addr", "add", f"{self.server_address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i in range(self.count):
                ns, outside, inside = self.namespace(i), f"mh{self.net}-{i}a", f"mh{self.net}-{i}b"
                _ip("netns", "add", ns)
                self.made.append(f"netns:{ns}")
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                self.made.append(f"link:{outside}")
                _ip("link", "set", outside, "master", self.bridge)
                _ip("link", "set", outside, "up")
                _ip("link", "set", inside, "netns", ns)
                _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inside)
                _ip("-n", ns, "link", "set", inside, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.remove()
            raise
        return self

    def command(self, i: int, argv: list[str]) -> list[str]:
        """``argv`` run in host ``i``: its network namespace and a UTS namespace named ``h<i>``."""
        script = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self.namespace(i), "unshare", "--uts", "sh", "-c", script, f"h{i}", *argv]

    def remove(self) -> None:
        for item in reversed(self.made):
            kind, name = item.split(":", 1)
            try:
                if kind == "netns":
                    _ip("netns", "del", name)  # its end of the veth pair goes with it
                else:
                    _ip("link", "del", name)
            except subprocess.CalledProcessError:
                continue  # already gone (a veth is removed with its peer)
        self.made.clear()
