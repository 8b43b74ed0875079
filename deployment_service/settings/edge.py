"""The edge: where pointers are published, the router's AWS pieces, retention, the local edge."""

from django.core.exceptions import ImproperlyConfigured

from deployment_service.settings.django import DEBUG
from deployment_service.settings.env import env_bool, env_int, env_str

# Where going live is written. "kvs": the CloudFront KeyValueStore the viewer function reads (a
# worker publishes each pointer from the database, the source of truth). "local": nowhere but
# the database, which the local edge (`manage.py edge`) reads directly; the development run and
# the tests use it, since no emulator serves the KeyValueStore data API.
TROY_EDGE_POINTERS = env_str("TROY_EDGE_POINTERS", "local" if DEBUG else "kvs")
if TROY_EDGE_POINTERS not in ("kvs", "local"):
    raise ImproperlyConfigured(f"TROY_EDGE_POINTERS must be 'kvs' or 'local', not {TROY_EDGE_POINTERS!r}")

# The router's AWS pieces, created by `manage.py bootstrap_aws` (found by these names).
TROY_EDGE_KVS_NAME = env_str("TROY_EDGE_KVS_NAME", "troy-pointers")
TROY_EDGE_FUNCTION_NAME = env_str("TROY_EDGE_FUNCTION_NAME", "troy-viewer-request")
TROY_EDGE_LAMBDA_NAME = env_str("TROY_EDGE_LAMBDA_NAME", "troy-origin-request")
TROY_EDGE_LAMBDA_ROLE_NAME = env_str("TROY_EDGE_LAMBDA_ROLE_NAME", "troy-origin-request")
# The one distribution with alias *.{TROY_BASE_DOMAIN} that serves every preview and permalink
# host, with its DNS record (made by `manage.py bootstrap_aws`; docs/edge.md, "The wildcard
# distribution"). Off only in the in-process tests, which count the account's distributions.
TROY_WILDCARD_DISTRIBUTION = env_bool("TROY_WILDCARD_DISTRIBUTION", True)

# Builds kept per pipeline (their manifests and blobs), newest first, always with the live one.
TROY_RETAINED_BUILDS = env_int("TROY_RETAINED_BUILDS", 10)
if TROY_RETAINED_BUILDS < 1:
    raise ImproperlyConfigured("TROY_RETAINED_BUILDS must be at least 1 (the live build is always kept)")
# A blob no kept manifest names is deleted only once it is older than this: a deploy running
# now may have just uploaded it (or found it) for the manifest it has not written yet.
TROY_BLOB_GRACE_SECONDS = env_int("TROY_BLOB_GRACE_SECONDS", 60 * 60)
if TROY_BLOB_GRACE_SECONDS < 0:
    raise ImproperlyConfigured("TROY_BLOB_GRACE_SECONDS cannot be negative")
# How often `manage.py scheduler` sends the retention care (prune_builds): storage piles up
# slowly, and each run lists a pipeline's blobs, so far less often than the reaper.
TROY_RETENTION_INTERVAL_SECONDS = env_int("TROY_RETENTION_INTERVAL_SECONDS", 60 * 60)
if TROY_RETENTION_INTERVAL_SECONDS <= 0:
    raise ImproperlyConfigured("TROY_RETENTION_INTERVAL_SECONDS must be positive")

# The local edge (`manage.py edge`): the port it listens on when the service runs one (the dev
# run sets it). 0 = none; then the API reports no local address.
TROY_LOCAL_EDGE_PORT = env_int("TROY_LOCAL_EDGE_PORT", 0)
