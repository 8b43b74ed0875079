"""Route53 alias records that point a pipeline's domain at its CloudFront distribution."""

from __future__ import annotations

from botocore.exceptions import ClientError
from django.conf import settings

from deployment_service import aws
from deployment_service.integrations.cloudfront import CLOUDFRONT_HOSTED_ZONE_ID

ALIAS_RECORD_TYPES = ("A", "AAAA")


class HostedZoneNotFound(Exception):
    """Neither TROY_HOSTED_ZONE_ID nor a public zone for TROY_BASE_DOMAIN exists."""


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def public_zone_id(name: str) -> str | None:
    """The id of the public hosted zone named ``name`` (fully qualified, with the trailing dot)."""
    answer = aws.client("route53").list_hosted_zones_by_name(DNSName=name)
    for zone in answer.get("HostedZones", []):
        if zone["Name"] == name and not zone.get("Config", {}).get("PrivateZone"):
            return zone["Id"].split("/")[-1]
    return None


def hosted_zone_id() -> str:
    """``TROY_HOSTED_ZONE_ID``, or the public hosted zone named after ``TROY_BASE_DOMAIN``."""
    if settings.TROY_HOSTED_ZONE_ID:
        return settings.TROY_HOSTED_ZONE_ID
    wanted = _fqdn(settings.TROY_BASE_DOMAIN)
    zone_id = public_zone_id(wanted)
    if zone_id is not None:
        return zone_id
    raise HostedZoneNotFound(
        f"No public hosted zone {wanted} in Route53; set TROY_HOSTED_ZONE_ID or run manage.py bootstrap_aws."
    )


def alias_records_upsert(*, zone_id: str, name: str, distribution_domain: str) -> None:
    """Point ``name`` (A and AAAA) at the distribution. UPSERT: running it twice is harmless."""
    target = {
        "HostedZoneId": CLOUDFRONT_HOSTED_ZONE_ID,
        "DNSName": distribution_domain,
        "EvaluateTargetHealth": False,
    }
    aws.client("route53").change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Comment": f"Troy: {name} -> {distribution_domain}",
            "Changes": [
                {"Action": "UPSERT", "ResourceRecordSet": {"Name": _fqdn(name), "Type": rtype, "AliasTarget": target}}
                for rtype in ALIAS_RECORD_TYPES
            ],
        },
    )


def alias_records_get(*, zone_id: str, name: str) -> list[dict]:
    """The A and AAAA record sets at exactly ``name`` (empty when there are none)."""
    wanted = _fqdn(name)
    answer = aws.client("route53").list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=wanted, StartRecordType="A", MaxItems="10"
    )
    return [
        rrset
        for rrset in answer.get("ResourceRecordSets", [])
        if _fqdn(rrset["Name"]) == wanted and rrset["Type"] in ALIAS_RECORD_TYPES
    ]


def alias_records_delete(*, zone_id: str, name: str) -> int:
    """Delete the A and AAAA records at ``name``. Missing records count as deleted.

    A DELETE must repeat the record exactly, so the current sets are read first. Returns how many
    record sets were deleted."""
    for _ in range(3):
        records = alias_records_get(zone_id=zone_id, name=name)
        if not records:
            return 0
        try:
            aws.client("route53").change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={
                    "Comment": f"Troy: remove {name}",
                    "Changes": [{"Action": "DELETE", "ResourceRecordSet": rrset} for rrset in records],
                },
            )
        except ClientError as exc:
            # A record changed or went away between our read and the DELETE: read again.
            if aws.error_code(exc) == "InvalidChangeBatch" and "not found" in str(exc).lower():
                continue
            raise
        return len(records)
    raise RuntimeError(f"Route53 records for {name} kept changing while Troy deleted them; try again.")
