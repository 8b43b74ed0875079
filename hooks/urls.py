from django.urls import path

from hooks.github_setup import github_setup
from hooks.github_views import github_webhook
from hooks.views import sns_webhook

urlpatterns = [
    path("github/", github_webhook, name="github-webhook"),
    path("github/setup/", github_setup, name="github-setup"),
    path("sns/", sns_webhook, name="sns-webhook"),
]
