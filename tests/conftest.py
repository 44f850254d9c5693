"""Shared fixtures. The bucket emulators start inside the test session, on free ports, and stop
with it: nothing needs to run beforehand."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
READY_SECONDS = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], log: Path, ready: Callable[[], bool],
           env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server and wait until it answers; fail fast (with its log) if it exits or never
    answers. Beam's S3 and GCS clients retry an unreachable endpoint for minutes."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{command[0]} exited with {process.returncode}:\n{log.read_text()}")
        if ready():
            return process
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"{command[0]} did not answer within {READY_SECONDS} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _listens(port: int) -> Callable[[], bool]:
    """A check that something accepts TCP connections on 127.0.0.1:port (a gRPC server)."""
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False
    return check


def _answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answered, if only with an error status
        except OSError:
            return False
    return check


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A moto S3 server: its endpoint, test credentials and region."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    process = _start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log,
                     _answers(endpoint + "/moto-api/"))
    try:
        yield {"endpoint": endpoint, "access_key": "testing", "secret_key": "testing",
               "region": "us-east-1"}
    finally:
        _stop(process)


def s3_client(moto_s3: dict[str, str]):
    """A boto3 client of the moto server, to put and list test objects."""
    import boto3

    return boto3.client("s3", endpoint_url=moto_s3["endpoint"],
                        aws_access_key_id=moto_s3["access_key"],
                        aws_secret_access_key=moto_s3["secret_key"],
                        region_name=moto_s3["region"])


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory) -> Iterator[dict[str, str]]:
    """gcp-storage-emulator in memory, and a static-token credentials file so that
    google.auth.default() returns at once (without one, Beam retries it for ~30 s) and never
    refreshes (the expiry is far away)."""
    port = free_port()
    folder = tmp_path_factory.mktemp("gcs")
    credentials = folder / "credentials.json"
    credentials.write_text(json.dumps({
        "type": "authorized_user", "client_id": "test", "client_secret": "test",
        "refresh_token": "test", "token": "test-token", "expiry": "2999-01-01T00:00:00Z"}))
    process = _start([str(BIN / "gcp-storage-emulator"), "start", "--host=127.0.0.1",
                      f"--port={port}", "--in-memory"], folder / "emulator.log",
                     _answers(f"http://127.0.0.1:{port}/storage/v1/b"))
    try:
        yield {"host": f"http://127.0.0.1:{port}", "credentials": str(credentials),
               "project": "test-project"}
    finally:
        _stop(process)


@pytest.fixture
def gcs_env(gcs_emulator, monkeypatch) -> dict[str, str]:
    """The environment that points google-cloud-storage (and so Beam) at the emulator."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator["host"])  # http:// is required
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", gcs_emulator["credentials"])
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", gcs_emulator["project"])
    return gcs_emulator


def written_sample_files(count: int) -> list[str]:
    """The first ``count`` of pydicom's sample files (sorted) that the basic profile writes,
    each as a different instance: inputs for runs that must quarantine nothing."""
    from deid.engine import Output, deidentify_bytes
    from deid.keys import SecretKey
    from deid.profile import load_profiles
    from pipelines.deidentify import sample_files

    profile, key = load_profiles(["basic"]), SecretKey(b"written-sample-files-0123456789", "tests")
    found, seen = [], set()
    for path in sample_files():
        out = deidentify_bytes(Path(path).read_bytes(), profile, key)
        if isinstance(out, Output) and out.sop_instance_uid not in seen:
            seen.add(out.sop_instance_uid)
            found.append(path)
        if len(found) == count:
            return found
    raise AssertionError("not enough distinct sample files")
