from django.urls import path

from hooks.github_views import github_webhook

urlpatterns = [
    path("github/", github_webhook, name="github-webhook"),
]
