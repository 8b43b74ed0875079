from django.urls import path

from hooks.github_views import github_webhook
from hooks.views import sns_webhook

urlpatterns = [
    path("github/", github_webhook, name="github-webhook"),
    path("sns/", sns_webhook, name="sns-webhook"),
]
