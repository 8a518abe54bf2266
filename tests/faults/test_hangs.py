"""Nothing hangs: a Ray address where no cluster answers, or that is no address at all, is one
line naming it, exit 2, within the connect timeout, before any output folder is made."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.faults.conftest import TINY, assert_one_line_error, assert_unchanged, snapshot

SWEEP = ('sweep: {capacities: {template: "vit-d{depth}-w16-p8", axes: {depth: [1]}}, '
         "weights: {step: 1.0}, seeds: [0]}\nseed: 0\n")
SEARCH = "search: {strategy: random, population: 2, interval: 1}\nseed: 0\n"
COMPARE = "compare: {methods: [static], seeds: [0]}\nseed: 0\n"
FIX = "ray start --head"


@pytest.fixture()
def dead_port() -> int:
    """A loopback port where nothing listens (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts connections on every interface and never answers (a firewall
    that drops, a hung head)."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def _refused(cli, tmp_path, config_file, command: str, text: str, address: str,
             *culprits: str, seconds: float = 10.0, extra: tuple[str, ...] = ()) -> float:
    out, config = tmp_path / "out", config_file(text)
    before = snapshot(tmp_path)
    start = time.monotonic()
    result = cli(command, config, *TINY, "--out", out, "--engine", "ray",
                 "--address", address, "--quiet", *extra)
    took = time.monotonic() - start
    assert_one_line_error(result, *culprits)
    assert took < seconds, took
    assert not out.exists()
    assert_unchanged(before, tmp_path)
    return took


@pytest.mark.parametrize("command,text", [("sweep", SWEEP), ("search", SEARCH),
                                          ("compare", COMPARE)],
                         ids=["sweep", "search", "compare"])
def test_nothing_listening_at_the_address_is_one_line_at_once(cli, tmp_path, config_file,
                                                              dead_port, command, text):
    address = f"127.0.0.1:{dead_port}"
    _refused(cli, tmp_path, config_file, command, text, address, address, "refused", FIX)


def test_a_silent_address_is_refused_within_the_connect_timeout(tmp_path, silent_port):
    """A port that accepts and never answers: refused after ``connect_timeout`` seconds (the
    CLI's default, 30 s, is the same code with a longer wait)."""
    from scalarize.engines.executors import build_engine
    from scalarize.errors import ScalarizeError

    address = f"127.0.0.1:{silent_port}"
    start = time.monotonic()
    with pytest.raises(ScalarizeError, match="no answer within 1 s") as raised:
        build_engine("ray", {"address": address, "connect_timeout": 1.0})
    assert 1.0 <= time.monotonic() - start < 5.0
    assert address in str(raised.value) and FIX in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("address", ["nonsense", "host:notaport", "host:0", "host:99999",
                                     ":6379", "http://10.0.0.5:8265"])
def test_an_unparsable_address_is_one_line(cli, tmp_path, config_file, address):
    _refused(cli, tmp_path, config_file, "sweep", SWEEP, address, address, "HOST:PORT")


def test_address_auto_with_no_cluster_running_is_one_line(cli, tmp_path, config_file,
                                                          monkeypatch):
    """``auto`` looks in RAY_ADDRESS, the address file of the last ``ray start`` and the running
    GCS processes: with none of them (no cluster on this machine) it is one line."""
    from ray._private import services

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: frozenset())
    _refused(cli, tmp_path, config_file, "search", SEARCH, "auto", "auto",
             "no running Ray cluster", FIX)


def test_a_bad_connect_timeout_is_one_line(tmp_path, dead_port):
    from scalarize.engines.executors import build_engine
    from scalarize.errors import ScalarizeError

    with pytest.raises(ScalarizeError, match="connect_timeout"):
        build_engine("ray", {"address": f"127.0.0.1:{dead_port}", "connect_timeout": -1})
