"""End to end in the production shape: gunicorn and a separate ``rundramatiq`` worker process on
the real broker and PostgreSQL, AWS as a moto server. Driven black-box over HTTP like a user would;
AWS is checked through boto3 against the moto server."""

from __future__ import annotations

import io
import json
import secrets
import zipfile

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.postgres]

ALIAS_ZONE = "Z2FDTNDATAQYW2"  # CloudFront's hosted zone for alias records


def _pipeline_in(stack, pipeline_id: str, wanted: str, *, failed: set[str]):
    """A probe: the pipeline once it reached ``wanted``; fails at once in a failed status."""

    def probe():
        response = stack.api.get(stack.url(f"/api/v1/pipelines/{pipeline_id}/"), timeout=5)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in failed:
            raise stack.failure(f"pipeline went to {body['status']} instead of {wanted}: {body}")
        return body if body["status"] == wanted else None

    return probe


def _site_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, content in files.items():
            zf.writestr(path, content)
    return buffer.getvalue()


def _deploy_release(stack, pipeline_id: str, version: str, files: dict[str, bytes]) -> dict:
    """Upload a release with ``deploy``; wait until the pipeline is deployed; the finished build."""
    response = stack.api.post(
        stack.url(f"/api/v1/pipelines/{pipeline_id}/releases/"),
        files={"file": (f"site-{version}.zip", _site_zip(files), "application/zip")},
        data={"version": version, "deploy": "true"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    build_id = response.json()["build"]["id"]

    def build_finished():
        build = stack.api.get(stack.url(f"/api/v1/builds/{build_id}/"), timeout=5).json()
        if build["status"] in {"failed", "cancelled", "superseded"}:
            raise stack.failure(f"release build {version} ended {build['status']}: {build}")
        return build if build["status"] == "succeeded" else None

    build = stack.wait_for(f"release {version} build succeeded", build_finished)
    pipeline = stack.wait_for(
        f"pipeline deployed with release {version}",
        _pipeline_in(stack, pipeline_id, "deployed", failed={"failed_to_deploy"}),
    )
    assert pipeline["live_build"]["id"] == build_id, pipeline
    return build


def _live_files(stack, pipeline_id: str) -> dict[str, bytes]:
    """What the live build serves, read through its stored manifest; {} when nothing is left
    under the pipeline's prefix (a deleted pipeline)."""
    s3 = stack.boto("s3")
    prefix = f"{pipeline_id}/"
    if not s3.list_objects_v2(Bucket="troy-live", Prefix=prefix).get("Contents"):
        return {}
    answer = stack.api.get(stack.url(f"/api/v1/pipelines/{pipeline_id}/"), timeout=10)
    assert answer.status_code == 200, answer.text
    live = answer.json()["live_build"]
    raw = s3.get_object(Bucket="troy-live", Key=f"{prefix}builds/{live['id']}.json")["Body"].read()
    return {
        path: s3.get_object(Bucket="troy-live", Key=f"{prefix}blobs/{entry['key']}")["Body"].read()
        for path, entry in json.loads(raw)["files"].items()
    }


def _records_for(stack, domain: str) -> dict[str, dict]:
    route53 = stack.boto("route53")
    records = route53.list_resource_record_sets(HostedZoneId=stack.hosted_zone_id)["ResourceRecordSets"]
    return {r["Type"]: r for r in records if r["Name"].rstrip(".") == domain}


def test_pipeline_provisions_deploys_releases_and_deletes_through_real_worker_process(stack):
    name = f"e2e-{secrets.token_hex(3)}"
    response = stack.api.post(
        stack.url("/api/v1/pipelines/"),
        json={
            "name": name,
            "repository": "",  # release-only: naming a repository needs a linked GitHub installation
            "branch": "main",
            "provision": True,
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    pipeline_id = created["id"]
    assert created["status"] == "provision_request"

    # The worker process picks the message up from the broker and provisions on "AWS".
    ready = stack.wait_for(
        "pipeline ready_for_deployment",
        _pipeline_in(stack, pipeline_id, "ready_for_deployment", failed={"failed_to_provision"}),
    )
    domain = ready["domain"]
    assert domain == f"{name}.sites.troy.test"
    distribution = stack.boto("cloudfront").get_distribution(Id=ready["distribution_id"])["Distribution"]
    config = distribution["DistributionConfig"]
    assert config["Aliases"]["Items"] == [domain]
    assert config["Origins"]["Items"][0]["OriginPath"] == f"/{pipeline_id}"
    assert ready["distribution_domain"] == distribution["DomainName"]
    records = _records_for(stack, domain)
    assert set(records) == {"A", "AAAA"}, records
    for record in records.values():
        assert record["AliasTarget"]["DNSName"].rstrip(".") == distribution["DomainName"]
        assert record["AliasTarget"]["HostedZoneId"] == ALIAS_ZONE

    # A release uploaded with deploy: the worker stores it as blobs and a manifest in the
    # pipeline's folder of the live bucket; a second release uploads only what changed.
    first = {
        "index.html": b"<h1>first</h1>",
        "about.html": b"<h1>about</h1>",
        "assets/app.3f9a2b1c.js": b"console.log('app')",
    }
    build = _deploy_release(stack, pipeline_id, "1.0.0", first)
    assert build["stats"]["files_uploaded"] == 3, build
    assert _live_files(stack, pipeline_id) == first
    live = stack.api.get(stack.url(f"/api/v1/pipelines/{pipeline_id}/"), timeout=10).json()["live_build"]
    manifest = stack.boto("s3").get_object(Bucket="troy-live", Key=f"{pipeline_id}/builds/{live['id']}.json")
    page = json.loads(manifest["Body"].read())["files"]["index.html"]
    head = stack.boto("s3").head_object(Bucket="troy-live", Key=f"{pipeline_id}/blobs/{page['key']}")
    assert head["ContentType"].startswith("text/html") and head["ContentType"] == page["type"], head

    second = {"index.html": b"<h1>second</h1>", "assets/app.3f9a2b1c.js": b"console.log('app')"}
    build = _deploy_release(stack, pipeline_id, "1.1.0", second)
    assert build["stats"]["files_uploaded"] == 1, build
    assert _live_files(stack, pipeline_id) == second

    # Deletion: scheduled by the API, done by the worker (it waits for the distribution to be
    # disabled by re-enqueueing itself with a delay).
    response = stack.api.delete(stack.url(f"/api/v1/pipelines/{pipeline_id}/"), timeout=10)
    assert response.status_code == 202, response.text
    stack.wait_for(
        "pipeline row removed (GET answers 404)",
        lambda: stack.api.get(stack.url(f"/api/v1/pipelines/{pipeline_id}/"), timeout=5).status_code == 404,
        timeout=120,
    )
    response = stack.api.get(stack.url(f"/api/v1/pipelines/{pipeline_id}/events/"), timeout=5)
    assert response.status_code == 200, response.text
    page = response.json()
    events = page["results"] if isinstance(page, dict) else page
    moves = [(e["from_status"], e["to_status"]) for e in reversed(events)]  # the API lists newest first
    assert moves == [
        ("pre_provisioned", "provision_request"),
        ("provision_request", "provisioning"),
        ("provisioning", "ready_for_deployment"),
        ("ready_for_deployment", "queued"),
        ("queued", "deploying"),
        ("deploying", "deployed"),
        ("deployed", "queued"),
        ("queued", "deploying"),
        ("deploying", "deployed"),
        ("deployed", "scheduled_for_deletion"),
        ("scheduled_for_deletion", "deleting"),
        ("deleting", "deleted"),
    ], moves
    assert all(e["pipeline_name"] == name for e in events)

    # Nothing is left on AWS.
    listed = stack.boto("cloudfront").list_distributions()["DistributionList"].get("Items", [])
    assert ready["distribution_id"] not in {d["Id"] for d in listed}
    assert _records_for(stack, domain) == {}
    assert _live_files(stack, pipeline_id) == {}


def test_bootstrap_made_the_shared_wildcard_distribution_of_previews_and_its_record(stack):
    """`manage.py bootstrap_aws` (run by the stack) made one distribution with alias
    `*.{base}` for every preview and permalink host, and the DNS wildcard pointing at it."""
    alias = "*.sites.troy.test"
    listed = stack.boto("cloudfront").list_distributions()["DistributionList"].get("Items", [])
    [wildcard] = [d for d in listed if alias in (d.get("Aliases", {}).get("Items") or [])]
    config = stack.boto("cloudfront").get_distribution_config(Id=wildcard["Id"])["DistributionConfig"]
    assert config["CallerReference"] == "troy-wildcard-previews"
    records = stack.boto("route53").list_resource_record_sets(HostedZoneId=stack.hosted_zone_id)["ResourceRecordSets"]
    found = {r["Type"]: r for r in records if r["Name"].replace("\\052", "*").rstrip(".") == alias}
    assert set(found) == {"A", "AAAA"}, records
    for record in found.values():
        assert record["AliasTarget"]["DNSName"].rstrip(".") == wildcard["DomainName"]
        assert record["AliasTarget"]["HostedZoneId"] == ALIAS_ZONE
