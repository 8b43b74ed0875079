"""Errors of the inbound hooks, each with a stable ``code`` (the JSON body's) and HTTP status.

SNS treats 2xx-4xx as delivered and retries other answers, so only a failure on our side that a
retry can mend (the signing certificate could not be fetched) is a 5xx."""

from rest_framework import status as http_status

from deployment_service.exceptions import ApplicationError, InvalidInput

# --- SNS ----------------------------------------------------------------------------------------


class InvalidSnsMessage(ApplicationError):
    code = "invalid_sns_message"
    http_status = http_status.HTTP_400_BAD_REQUEST


class UnknownTopic(ApplicationError):
    code = "unknown_topic"
    http_status = http_status.HTTP_403_FORBIDDEN


class StaleSnsMessage(ApplicationError):
    code = "stale_sns_message"
    http_status = http_status.HTTP_400_BAD_REQUEST


class InvalidSigningCertUrl(ApplicationError):
    code = "invalid_signing_cert_url"
    http_status = http_status.HTTP_403_FORBIDDEN


class InvalidCertificate(ApplicationError):
    code = "invalid_certificate"
    http_status = http_status.HTTP_403_FORBIDDEN


class CertificateUnavailable(ApplicationError):
    code = "certificate_unavailable"
    http_status = http_status.HTTP_503_SERVICE_UNAVAILABLE


class InvalidSnsSignature(ApplicationError):
    code = "invalid_signature"
    http_status = http_status.HTTP_403_FORBIDDEN


# --- GitHub -------------------------------------------------------------------------------------


class WebhookNotConfigured(ApplicationError):
    code = "webhook_not_configured"
    http_status = http_status.HTTP_503_SERVICE_UNAVAILABLE


class InvalidSignature(ApplicationError):
    code = "invalid_signature"
    http_status = http_status.HTTP_401_UNAUTHORIZED


class SignatureMismatch(InvalidSignature):
    http_status = http_status.HTTP_403_FORBIDDEN


class InvalidDelivery(InvalidInput):
    code = "invalid_delivery"
