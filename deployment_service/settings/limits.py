"""Request body limits (deployment_service/limits.py), checked before anything reads a body.

Over the limit → 413 body_too_large; multipart only on the release upload (TROY_UPLOAD_MAX_BYTES in
troy.py). The admin and every other route take the API's limit.
"""

from deployment_service.settings.django import MIDDLEWARE, REST_FRAMEWORK
from deployment_service.settings.env import env_int

TROY_API_MAX_BODY_BYTES = env_int("TROY_API_MAX_BODY_BYTES", 1024 * 1024)
TROY_SNS_MAX_BODY_BYTES = env_int("TROY_SNS_MAX_BODY_BYTES", 256 * 1024)  # SNS's own message limit
TROY_GITHUB_MAX_BODY_BYTES = env_int("TROY_GITHUB_MAX_BODY_BYTES", 25 * 1024 * 1024)  # GitHub's cap
# The middleware is the gate; Django's own check (an HTML 400) must never be the stricter one.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(TROY_API_MAX_BODY_BYTES, TROY_SNS_MAX_BODY_BYTES, TROY_GITHUB_MAX_BODY_BYTES)
MIDDLEWARE.insert(0, "deployment_service.limits.RequestBodyLimitMiddleware")  # before anything reads a body
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["deployment_service.parsers.SafeJSONParser"]
