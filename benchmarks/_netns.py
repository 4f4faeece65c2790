"""Network namespaces for the bandwidth benchmark: N nodes on a bridge, egress shaped by tc.

``{PREFIX}-hub`` holds a bridge; ``{PREFIX}-0 … -{N−1}`` each hold one end of a veth pair
(the other end on the bridge) with an address in ``{SUBNET}.0/24``. Everything is made
inside these namespaces (never in the host's) and removed on exit, also after an error.
Rates are shaped with a token bucket (``tbf``); a one-way delay needs ``netem``, which not
every kernel has (:func:`why_no_netem` says whether this one does).
"""

import os
import shutil
import subprocess

__all__ = ["Network", "why_not", "why_no_netem", "PREFIX", "SUBNET"]

PREFIX = "simsgdbw"
SUBNET = "10.213.7"


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def _tc(*args, check=True):
    return subprocess.run(["tc", *args], check=check, capture_output=True, text=True, timeout=30)


class Network:
    """The benchmark's namespaces: ``{PREFIX}-hub`` (a bridge) and ``{PREFIX}-0 … -{N−1}``.

    Use as a context manager; everything is removed on exit, whatever happened.

    Parameters
    ----------
    nodes : int
        N, one namespace per node.
    """

    def __init__(self, nodes):
        self.nodes = nodes
        self.names = [f"{PREFIX}-{i}" for i in range(nodes)]
        self.hub = f"{PREFIX}-hub"

    def address(self, i):
        """Node ``i``'s IPv4 address."""
        return f"{SUBNET}.{i + 1}"

    def __enter__(self):
        try:
            self._make()
        except BaseException:
            self.remove()
            raise
        return self

    def _make(self):
        self.remove()  # leftovers of a killed earlier run
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for i, name in enumerate(self.names):
            _ip("netns", "add", name)
            # Both ends are created inside our namespaces, never in the host's.
            _ip(
                "link",
                "add",
                "veth0",
                "netns",
                name,
                "type",
                "veth",
                "peer",
                "name",
                f"p{i}",
                "netns",
                self.hub,
            )
            _ip("-n", self.hub, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", name, "addr", "add", f"{self.address(i)}/24", "dev", "veth0")
            _ip("-n", name, "link", "set", "veth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")

    def shape(self, mbit, delay_ms=0.0):
        """Shape each node's egress: ``mbit`` Mbit/s (0: no rate limit) and ``delay_ms`` one way.

        A rate alone uses ``tbf`` (burst: 1 ms at the rate, at least 16 kB); a delay uses
        ``netem`` (with its own rate limit when ``mbit`` is given). Both 0: no qdisc.

        Raises
        ------
        subprocess.CalledProcessError
            tc refused (e.g. no ``netem`` in this kernel).
        """
        for name in self.names:
            _tc("-n", name, "qdisc", "del", "dev", "veth0", "root", check=False)
            if delay_ms:
                rate = ["rate", f"{mbit}mbit"] if mbit else []
                _tc(
                    "-n",
                    name,
                    "qdisc",
                    "add",
                    "dev",
                    "veth0",
                    "root",
                    "netem",
                    "delay",
                    f"{delay_ms}ms",
                    *rate,
                )
            elif mbit:
                burst = max(16_000, int(mbit * 1e6 / 8 / 1000))
                _tc("-n", name, "qdisc", "add", "dev", "veth0", "root", "tbf", "rate", f"{mbit}mbit",
                    "burst", str(burst), "latency", "100ms")  # fmt: skip

    def remove(self):
        """Delete our namespaces (their links and addresses go with them)."""
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
        present = {line.split()[0] for line in listed.splitlines() if line.strip()}
        for name in [*self.names, self.hub]:
            if name in present:
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)

    def __exit__(self, *exc):
        self.remove()
        return False


def why_not():
    """None if namespaces can be made and rates shaped here, else the reason (one line)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"needs '{tool}' (apt-get install iproute2)"
    try:
        with Network(1) as net:
            net.shape(100)
    except (subprocess.CalledProcessError, OSError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        return f"cannot make namespaces or shape links here: {detail.strip()}"
    return None


def why_no_netem():
    """None if this kernel can delay packets (``tc … netem``), else tc's reason (one line)."""
    reason = why_not()
    if reason is not None:
        return reason
    try:
        with Network(1) as net:
            net.shape(0, delay_ms=1.0)
    except (subprocess.CalledProcessError, OSError) as err:
        detail = (getattr(err, "stderr", "") or str(err)).strip().splitlines()
        return f"no netem here: tc says {detail[0] if detail else 'nothing'!r}"
    return None
