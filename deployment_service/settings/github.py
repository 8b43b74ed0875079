"""The GitHub App that starts automated builds."""

from deployment_service.settings.env import env_int, env_str

GITHUB_APP_ID = env_str("GITHUB_APP_ID")
GITHUB_APP_PRIVATE_KEY = env_str("GITHUB_APP_PRIVATE_KEY").replace("\\n", "\n")
GITHUB_WEBHOOK_SECRET = env_str("GITHUB_WEBHOOK_SECRET")
GITHUB_API_URL = env_str("GITHUB_API_URL", "https://api.github.com").rstrip("/")
# The App's URL name (github.com/apps/<slug>): the install link Troy hands a user starts there.
TROY_GITHUB_APP_SLUG = env_str("TROY_GITHUB_APP_SLUG")
# Where the App's pages live (GitHub Enterprise Server: https://HOST).
TROY_GITHUB_URL = env_str("TROY_GITHUB_URL", "https://github.com").rstrip("/")
# How long the signed state of an install link stays good (seconds).
TROY_GITHUB_INSTALL_STATE_MAX_AGE = env_int("TROY_GITHUB_INSTALL_STATE_MAX_AGE", 3600)
