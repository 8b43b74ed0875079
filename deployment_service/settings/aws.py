"""AWS: region, emulator endpoint and Troy's shared resources (domain, buckets, CodeBuild, SNS)."""

from django.core.exceptions import ImproperlyConfigured

from deployment_service.settings.django import DEBUG
from deployment_service.settings.env import env_bool, env_int, env_list, env_str

AWS_REGION = env_str("AWS_REGION", env_str("AWS_DEFAULT_REGION", "us-east-1"))
AWS_ENDPOINT_URL = env_str("AWS_ENDPOINT_URL")
TROY_BASE_DOMAIN = env_str("TROY_BASE_DOMAIN", "sites.troy.test").strip(".").lower()
TROY_HOSTED_ZONE_ID = env_str("TROY_HOSTED_ZONE_ID")
TROY_ACM_CERTIFICATE_ARN = env_str(
    "TROY_ACM_CERTIFICATE_ARN",
    "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
)
TROY_LIVE_BUCKET = env_str("TROY_LIVE_BUCKET", "troy-live")
TROY_ARTIFACT_BUCKET = env_str("TROY_ARTIFACT_BUCKET", "troy-artifacts")
TROY_CODEBUILD_PROJECT = env_str("TROY_CODEBUILD_PROJECT", "troy-build")
TROY_CODEBUILD_SERVICE_ROLE = env_str("TROY_CODEBUILD_SERVICE_ROLE", "arn:aws:iam::123456789012:role/troy-codebuild")
TROY_CODEBUILD_TIMEOUT_MINUTES = env_int("TROY_CODEBUILD_TIMEOUT_MINUTES", 30)
TROY_CODEBUILD_IMAGE = env_str("TROY_CODEBUILD_IMAGE", "aws/codebuild/standard:7.0")
TROY_SNS_TOPIC_ARNS = env_list("TROY_SNS_TOPIC_ARNS")
TROY_SNS_TOPIC_NAME = env_str("TROY_SNS_TOPIC_NAME", "troy-codebuild")
TROY_SNS_VERIFY_SIGNATURES = env_bool("TROY_SNS_VERIFY_SIGNATURES", True)
if not TROY_SNS_VERIFY_SIGNATURES and not DEBUG:
    raise ImproperlyConfigured("TROY_SNS_VERIFY_SIGNATURES=0 is only allowed with DJANGO_DEBUG=1 (local emulators)")
