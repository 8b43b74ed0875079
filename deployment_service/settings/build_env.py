"""Build environment: the key that encrypts secrets at rest, the SSM prefix and the limits.

TROY_SECRETS_KEY: one or more Fernet keys, comma-separated; the first encrypts, all decrypt (so a
new key can be put first while old tokens still read). Empty: one key derived from
DJANGO_SECRET_KEY with HKDF (changing DJANGO_SECRET_KEY then makes stored secrets unreadable:
docs/settings.md).
"""

import base64
import binascii

from django.core.exceptions import ImproperlyConfigured

from deployment_service.settings.env import env_int, env_list, env_str

TROY_SECRETS_KEY = env_list("TROY_SECRETS_KEY")
for _key in TROY_SECRETS_KEY:
    try:
        _valid = len(base64.urlsafe_b64decode(_key.encode())) == 32
    except (binascii.Error, ValueError):
        _valid = False
    if not _valid:
        raise ImproperlyConfigured(
            "TROY_SECRETS_KEY holds a value that is not a Fernet key (32 url-safe base64 bytes); make one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        )
# SecureString parameters are named `{prefix}{pipeline id}/{NAME}`; the CodeBuild role may read
# only this prefix (bootstrap_aws).
TROY_SSM_PREFIX = env_str("TROY_SSM_PREFIX", "/troy/")
if not (TROY_SSM_PREFIX.startswith("/") and TROY_SSM_PREFIX.endswith("/")) or "//" in TROY_SSM_PREFIX:
    raise ImproperlyConfigured(f"TROY_SSM_PREFIX={TROY_SSM_PREFIX!r} must start and end with '/' (e.g. /troy/)")
TROY_ENV_MAX_VARIABLES = env_int("TROY_ENV_MAX_VARIABLES", 100)
# SSM Parameter Store's standard tier holds 4 KB per value; plain values share the limit so a
# variable can turn secret without being refused.
TROY_ENV_MAX_VALUE_BYTES = env_int("TROY_ENV_MAX_VALUE_BYTES", 4096)
if not 0 < TROY_ENV_MAX_VALUE_BYTES <= 4096:
    raise ImproperlyConfigured("TROY_ENV_MAX_VALUE_BYTES must be between 1 and 4096 (SSM standard tier)")
