"""A Ray session for the Ray engine (planned runs and population searches alike).

Connecting to a cluster never hangs: ``ray.init(address=...)`` retries a silent address for
many minutes (20 attempts of its GCS client, each waiting up to ``py_gcs_connect_timeout_s``,
30 s, settings Ray reads once at import), so :func:`check_address` first asks the address,
within ``connect_timeout`` seconds, whether a Ray head's GCS (a gRPC, that is HTTP/2, server)
answers there, and refuses with one line naming the address otherwise.

The user's own modules that a config names by import target (found on the working directory
or ``PYTHONPATH``, see :mod:`scalarize.user_code`) go to the workers as
``runtime_env={"py_modules": [...]}``, added to what the user already gives Ray: the
``RAY_RUNTIME_ENV`` of a Ray Client (``ray://``) connection, or the runtime environment of a
``ray job submit``. A Ray the caller started already is used as it is (its runtime
environment is the caller's).

Example:
    >>> parse_address("10.0.0.5:6379")
    ('10.0.0.5', 6379)
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scalarize.errors import ScalarizeError

CONNECT_TIMEOUT = 30.0  # seconds; the ``connect_timeout`` engine option
CLIENT_PORT = 10001  # Ray Client's default port (``ray://host`` without one)
# the client connection preface of HTTP/2 and an empty SETTINGS frame: a gRPC server answers
# with a SETTINGS frame of its own (frame type 4 in the 4th byte of the 9-byte header)
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 4


def _fix(address: str, port: int | None = None) -> str:
    """What to do about an address where no cluster answers."""
    client = address.strip().startswith("ray://")
    where = f"ray start --head --port={port}" if port and not client else "ray start --head"
    return (f"start the cluster with '{where}' on that machine, check the address, or drop "
            "--address to run on a local Ray instance")


def parse_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a Ray address ``HOST:PORT`` or ``ray://HOST[:PORT]`` (Ray Client);
    one-line :class:`ScalarizeError` when it is neither."""
    text = address.strip()
    client = text.startswith("ray://")
    rest = text[len("ray://"):] if client else text
    host, sep, port_text = rest.rpartition(":")
    if client and (not sep or "]" in port_text):
        host, port_text = rest, str(CLIENT_PORT)
    host = host.strip("[]")
    port = int(port_text) if port_text.isdigit() else -1
    if not host or "/" in host or not 0 < port < 65536:
        raise ScalarizeError(
            f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the address "
            "'ray start --head' prints), ray://HOST:PORT or auto; check --address, or drop it "
            "to run on a local Ray instance")
    return host, port


def _target(address: str) -> tuple[str, int, str]:
    """Host and port ``ray.init(address)`` connects to, and how to name them in a message."""
    from ray._private import services

    if address.strip() == "auto":
        try:
            found = services.canonicalize_bootstrap_address("auto")
        except ConnectionError:
            found = None
        if not found:
            raise ScalarizeError(
                "Ray address 'auto': no running Ray cluster found on this machine (nor in "
                "RAY_ADDRESS); start one with 'ray start --head', give its HOST:PORT, or drop "
                "--address to run on a local Ray instance") from None
        host, port = parse_address(found)
        return host, port, f"'auto' ({found})"
    host, port = parse_address(address)
    if address.strip().startswith("ray://"):
        return host, port, address
    try:  # Ray connects to this machine's address in place of a loopback one
        resolved = services.resolve_ip_for_localhost(host)
    except Exception:
        resolved = host
    shown = address if resolved == host else f"{address} (which Ray reaches as {resolved}:{port})"
    return resolved, port, shown


def check_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise a one-line :class:`ScalarizeError` unless a Ray cluster answers at ``address``
    within ``timeout`` seconds: a TCP connection, then a gRPC (HTTP/2) server's greeting."""
    if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
        raise ScalarizeError(f"the Ray connect_timeout must be a positive number of seconds, "
                             f"got {timeout!r}")
    host, port, shown = _target(address)
    deadline = time.monotonic() + timeout
    reason = ""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.sendall(_HTTP2_HELLO)
            header = b""
            while len(header) < 9:
                chunk = sock.recv(9 - len(header))
                if not chunk:
                    break
                header += chunk
            if len(header) < 9 or header[3] != _SETTINGS:
                reason = "something answers there, but not a Ray head node's GCS port"
    except TimeoutError:
        reason = f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        reason = "connection refused: nothing listens there"
    except socket.gaierror:
        reason = f"unknown host {host}"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    if reason:
        raise ScalarizeError(f"cannot reach a Ray cluster at {shown}: {reason}; "
                             f"{_fix(address, port)}")


@contextmanager
def _one_connect_attempt(connecting: bool) -> Iterator[None]:
    """Ray's driver tries its GCS client once, not 20 times, when connecting to a cluster that
    :func:`check_address` found answering: a port that greets like gRPC but is no GCS then
    fails in one attempt (~40 s with Ray's defaults) instead of ~13 min. Ray reads
    ``RAY_gcs_server_port_wait_time_s`` at each connect (a local instance is left alone)."""
    key = "RAY_gcs_server_port_wait_time_s"
    before = os.environ.get(key)
    if connecting and before is None:
        os.environ[key] = "1"
    try:
        yield
    finally:
        if connecting and before is None:
            os.environ.pop(key, None)


_JOB_CONFIG = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # what ``ray job submit`` gives its driver
_OVERRIDE_JOB = "RAY_OVERRIDE_JOB_RUNTIME_ENV"
_CLIENT_ENV = "RAY_RUNTIME_ENV"  # a Ray Client connection's runtime_env (JSON)


def _json_env(key: str, where: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object in environment variable ``key`` (at ``where`` inside it), or ``{}``."""
    text = os.environ.get(key)
    if not text:
        return {}
    try:
        tree = json.loads(text)
        for part in where:
            tree = tree.get(part) or {}
    except (ValueError, AttributeError):
        raise ScalarizeError(f"the environment variable {key} is not a JSON object; fix or "
                             "unset it") from None
    if not isinstance(tree, dict):
        raise ScalarizeError(f"the environment variable {key} is not a JSON object; fix or "
                             "unset it")
    return tree


def runtime_env(address: str | None, modules: Sequence[Path | str]) -> dict[str, Any] | None:
    """The ``runtime_env`` to start Ray with so that its workers import ``modules`` (files and
    package folders of the user's code): ``py_modules`` appended to those the user gives Ray
    already (see the module docstring); ``None`` without modules (Ray's own defaults apply).

    Example:
        >>> runtime_env(None, ["/home/me/project/mydata.py"])
        {'py_modules': ['/home/me/project/mydata.py']}
    """
    if not modules:
        return None
    ours = [str(m) for m in modules]
    if _JOB_CONFIG in os.environ:  # ray job submit: Ray merges its runtime env with ours
        theirs = _json_env(_JOB_CONFIG, ("runtime_env",))
        return {"py_modules": [*theirs.get("py_modules", []), *ours]}
    given = (_json_env(_CLIENT_ENV) if address is not None and address.strip().startswith("ray://")
             else {})
    return {**given, "py_modules": [*given.get("py_modules", []), *ours]}


@contextmanager
def _job_env_merged(env: dict[str, Any] | None) -> Iterator[None]:
    """Under ``ray job submit`` whose runtime env already has ``py_modules``, let Ray take
    ours (which holds theirs, see :func:`runtime_env`) in place of a refusal to merge."""
    conflict = (env is not None and _JOB_CONFIG in os.environ
                and "py_modules" in _json_env(_JOB_CONFIG, ("runtime_env",))
                and _OVERRIDE_JOB not in os.environ)
    if conflict:
        os.environ[_OVERRIDE_JOB] = "1"
    try:
        yield
    finally:
        if conflict:
            os.environ.pop(_OVERRIDE_JOB, None)


@contextmanager
def ray_session(address: str | None, connect_timeout: float = CONNECT_TIMEOUT,
                modules: Sequence[Path | str] = ()) -> Iterator[None]:
    """Ray connected to ``address`` (a new local instance when ``None``: never a stale cluster
    whose address file a ``ray start`` left behind) for the duration; shut down afterwards
    unless it was already running. An address where no cluster answers within
    ``connect_timeout`` seconds is refused with one line (:func:`check_address`). ``modules``
    (the user's module files and package folders) are shipped to the workers
    (:func:`runtime_env`) when Ray starts here."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address is not None:
            check_address(address, connect_timeout)
        env = runtime_env(address, modules)
        try:
            with _one_connect_attempt(address is not None), _job_env_merged(env):
                ray.init(address=address or "local", include_dashboard=False,
                         log_to_driver=False, configure_logging=False, runtime_env=env)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            if address is None:
                raise
            last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            raise ScalarizeError(f"cannot connect to the Ray cluster at {address}: {last}; "
                                 f"{_fix(address)}") from None
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


__all__ = ["CONNECT_TIMEOUT", "check_address", "parse_address", "ray_session", "runtime_env"]
