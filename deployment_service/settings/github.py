"""The GitHub App that starts automated builds."""

from deployment_service.settings.env import env_str

GITHUB_APP_ID = env_str("GITHUB_APP_ID")
GITHUB_APP_PRIVATE_KEY = env_str("GITHUB_APP_PRIVATE_KEY").replace("\\n", "\n")
GITHUB_WEBHOOK_SECRET = env_str("GITHUB_WEBHOOK_SECRET")
GITHUB_API_URL = env_str("GITHUB_API_URL", "https://api.github.com").rstrip("/")
