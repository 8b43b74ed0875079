"""The production shape on one machine, for the end-to-end tests: a moto server as AWS, a database
of the test's own on the PostgreSQL server of ``DATABASE_URL``, ``bootstrap_aws``, gunicorn and a
``manage.py rundramatiq`` worker process on the real broker (``TROY_TEST_BROKER_URL``)."""

from __future__ import annotations

from dataclasses import dataclass
import os
import secrets

import boto3
from django.conf import settings
import pytest
import requests

from tests.e2e import processes as p


@dataclass
class Stack:
    base_url: str
    api: requests.Session
    aws_endpoint: str
    hosted_zone_id: str
    procs: p.Processes

    def boto(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def wait_for(self, what, probe, timeout: float = 180):
        return self.procs.wait_for(what, probe, timeout=timeout)

    def failure(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n{self.procs.logs()}")


def _environment(workdir, database_url: str, broker_url: str, aws_endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AWS_", "DJANGO_", "TROY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="deployment_service.settings",  # not the test settings pytest set
        DJANGO_SECRET_KEY=secrets.token_urlsafe(32),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        TROY_HTTPS="0",  # gunicorn is reached over plain HTTP on 127.0.0.1
        # The emulator has no edge (no KeyValueStore data API, no function publishing): pointers
        # stay in the database, which the local edge reads; the kvs side is covered by Stubber.
        TROY_EDGE_POINTERS="local",
        DATABASE_URL=database_url,
        DRAMATIQ_BROKER_URL=broker_url,
        TROY_REDIS_NAMESPACE=f"troy-e2e-{secrets.token_hex(4)}",
        TROY_DATA_DIR=str(workdir / "var"),
        TROY_UPLOAD_SPOOL_DIR=str(workdir / "spool"),
        AWS_ENDPOINT_URL=aws_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def stack(tmp_path):
    broker_url = settings.TROY_TEST_BROKER_URL
    if broker_url.startswith(("amqp://", "amqps://")):
        p.purge_rabbitmq_queues(broker_url)

    database = p.create_database()
    moto_port = p.free_port()
    web_port = p.free_port()
    while web_port == moto_port:  # the OS may hand out a just-closed port again
        web_port = p.free_port()
    aws_endpoint = f"http://127.0.0.1:{moto_port}"
    env = _environment(tmp_path, p.postgres_url(database), broker_url, aws_endpoint)
    procs = p.Processes(workdir=tmp_path, env=env)
    try:
        procs.start("moto", "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port))
        procs.wait_for(
            "moto server answering", lambda: requests.get(aws_endpoint + "/moto-api/", timeout=2).ok, timeout=120
        )
        procs.run("migrate", "manage.py", "migrate", "--noinput")
        report = procs.run("bootstrap_aws", "manage.py", "bootstrap_aws")
        values = dict(
            line.split(":", 1) for line in report.splitlines() if line.startswith(("hosted zone id:", "sns topic arn:"))
        )
        zone_id, topic_arn = values["hosted zone id"].strip(), values["sns topic arn"].strip()
        env.update(TROY_HOSTED_ZONE_ID=zone_id, TROY_SNS_TOPIC_ARNS=topic_arn)
        token = procs.run("issue_token", "manage.py", "issue_token", "e2e-user").strip()

        procs.start(
            "gunicorn",
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",  # the documented production configuration
            "deployment_service.wsgi",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--workers",
            "2",
            "--graceful-timeout",
            "5",
        )
        procs.start("worker", "manage.py", "rundramatiq", "--processes", "1", "--threads", "2")
        base_url = f"http://127.0.0.1:{web_port}"
        procs.wait_for(
            "gunicorn answering /readyz",
            lambda: requests.get(base_url + "/readyz", timeout=2).status_code == 200,
            timeout=120,
        )

        api = requests.Session()
        api.headers["Authorization"] = f"Token {token}"
        yield Stack(base_url=base_url, api=api, aws_endpoint=aws_endpoint, hosted_zone_id=zone_id, procs=procs)
    finally:
        procs.stop_all()
        p.drop_database(database)
