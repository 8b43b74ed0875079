"""Errors of the inbound hooks, each with a stable ``code`` (the JSON body's) and HTTP status.

SNS treats 2xx-4xx as delivered and retries other answers, so only a failure on our side that a
retry can mend (the signing certificate could not be fetched) is a 5xx."""

from rest_framework import status as http_status

from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError, InvalidInput

# --- SNS ----------------------------------------------------------------------------------------


class InvalidSnsMessage(ApplicationError):
    code = ErrorCode.INVALID_SNS_MESSAGE
    http_status = http_status.HTTP_400_BAD_REQUEST


class UnknownTopic(ApplicationError):
    code = ErrorCode.UNKNOWN_TOPIC
    http_status = http_status.HTTP_403_FORBIDDEN


class StaleSnsMessage(ApplicationError):
    code = ErrorCode.STALE_SNS_MESSAGE
    http_status = http_status.HTTP_400_BAD_REQUEST


class InvalidSigningCertUrl(ApplicationError):
    code = ErrorCode.INVALID_SIGNING_CERT_URL
    http_status = http_status.HTTP_403_FORBIDDEN


class InvalidCertificate(ApplicationError):
    code = ErrorCode.INVALID_CERTIFICATE
    http_status = http_status.HTTP_403_FORBIDDEN


class CertificateUnavailable(ApplicationError):
    code = ErrorCode.CERTIFICATE_UNAVAILABLE
    http_status = http_status.HTTP_503_SERVICE_UNAVAILABLE


class InvalidSnsSignature(ApplicationError):
    code = ErrorCode.INVALID_SIGNATURE
    http_status = http_status.HTTP_403_FORBIDDEN


# --- GitHub -------------------------------------------------------------------------------------


class WebhookNotConfigured(ApplicationError):
    code = ErrorCode.WEBHOOK_NOT_CONFIGURED
    http_status = http_status.HTTP_503_SERVICE_UNAVAILABLE


class InvalidSignature(ApplicationError):
    code = ErrorCode.INVALID_SIGNATURE
    http_status: int = http_status.HTTP_401_UNAUTHORIZED


class SignatureMismatch(InvalidSignature):
    http_status = http_status.HTTP_403_FORBIDDEN


class InvalidDelivery(InvalidInput):
    code = ErrorCode.INVALID_DELIVERY
