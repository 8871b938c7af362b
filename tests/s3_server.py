"""An S3 service for tests: moto's standalone server (``moto[server]``) on 127.0.0.1, on a port
the system chooses, in a thread of the test process. Tests talk to it through boto3 as they
would to OBS or S3.

Use the session fixture in a test module (pytest finds a fixture imported into the module)::

    from tests.s3_server import S3Server, s3_endpoint  # noqa: F401  (the fixture)

    def test_x(s3_endpoint: S3Server) -> None:
        bucket = s3_endpoint.new_bucket()

The credentials are fake and returned, never put in the environment: pass ``s3_endpoint.env``
where code reads them. Each worker of pytest-xdist starts its own server. moto keeps its
buckets in the process, so each test makes its own bucket (:meth:`S3Server.new_bucket`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config as BotoConfig
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "AKIATEARDOWNFAKE0001"
SECRET_KEY = "fake/Secret+Of+The+Teardown+Tests+0001"
REGION = "us-east-1"

_buckets = itertools.count(1)


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server."""

    endpoint: str
    """``http://127.0.0.1:<port>``"""
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    env: dict[str, str] = field(
        default_factory=lambda: {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
    )
    """The fake credentials, as the environment would hold them."""

    def client(self) -> S3Client:
        """A plain boto3 client of the server (one attempt per call: no retry back-off)."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=BotoConfig(retries={"mode": "standard", "max_attempts": 1}),
        )

    def new_bucket(self, stem: str = "td") -> str:
        """A new, empty bucket whose name no other test of this process uses."""
        name = f"{stem}-{os.getpid()}-{next(_buckets)}"
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def running_s3() -> Iterator[S3Server]:
    """Start moto's server on 127.0.0.1 (port 0: the system picks a free one), yield it, and
    stop it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(endpoint=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Server]:
    """moto's S3 server for the session (per xdist worker)."""
    with running_s3() as server:
        yield server
