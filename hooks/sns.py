"""SNS deliveries (CodeBuild's events, through EventBridge and an SNS topic): verify, store once,
and (in a worker) handle.

The web side (:func:`sns_delivery_receive`) parses the delivery, checks the topic against
``TROY_SNS_TOPIC_ARNS`` and the timestamp, verifies the signature with the signing certificate
(fetched from SNS without redirects, cached per URL), stores the delivery once per MessageId and
enqueues its handling on commit. It never calls an AWS API: confirming a subscription happens in
the worker. The certificate download is the one outbound call, and it is cached and short.

Answers (SNS treats 2xx-4xx as delivered and retries the rest):

* a body that is not an SNS message, headers that contradict it, a signature version other than
  1 or 2 → 400 ``invalid_sns_message``;
* a topic not in ``TROY_SNS_TOPIC_ARNS`` → 403 ``unknown_topic``;
* a timestamp older than an hour (or too far in the future) → 400 ``stale_sns_message``;
* a ``SigningCertURL`` that is not https on an ``sns.<region>.amazonaws.com[.cn]`` host with a
  ``.pem`` path (no userinfo, query, fragment, or port other than 443) → 403 ``invalid_signing_cert_url``;
* a certificate that answers anything but 200 with a PEM certificate → 403 ``invalid_certificate``,
  and one that cannot be fetched (network, 5xx) → 503 ``certificate_unavailable`` (SNS retries);
* a signature that does not verify → 403 ``invalid_signature``;
* a MessageId stored before → 200 ``duplicate``, nothing new;
* Notification and SubscriptionConfirmation → stored, handled in a worker → 200 ``queued``;
* UnsubscribeConfirmation → stored and logged (nothing to do) → 200 ``logged``.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import logging
import re
import threading
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
import requests
from rest_framework import status as http_status

from deployment_service.exceptions import ApplicationError
from deployment_service.integrations.sns import sns_confirm_subscription
from deployment_service.limits import parse_json_body
from deployment_service.transactions import send_on_commit
from hooks.exceptions import (
    CertificateUnavailable,
    InvalidCertificate,
    InvalidSigningCertUrl,
    InvalidSnsMessage,
    InvalidSnsSignature,
    StaleSnsMessage,
    UnknownTopic,
)
from hooks.models import SnsDelivery
from pipelines.flows.codebuild import codebuild_event_apply

logger = logging.getLogger(__name__)

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

# The fields signed, in the order they are signed (only those present; Subject is optional).
SIGNED_FIELDS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    UNSUBSCRIBE_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
REQUIRED_FIELDS = {
    kind: (*tuple(f for f in fields if f != "Subject"), "SignatureVersion", "Signature", "SigningCertURL")
    for kind, fields in SIGNED_FIELDS.items()
}
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

MAX_BODY_BYTES = 512 * 1024  # SNS messages are at most 256 KiB; the envelope adds a little
MAX_AGE = timedelta(hours=1)
MAX_CLOCK_SKEW = timedelta(minutes=5)
CERT_TIMEOUT = (3, 5)  # (connect, read) seconds: SNS waits 15 s for our answer
MAX_CERT_BYTES = 64 * 1024
CERT_CACHE_SIZE = 32

_CERT_HOST_RE = re.compile(r"sns\.[a-z0-9]+(?:-[a-z0-9]+)+\.amazonaws\.com(?:\.cn)?")
_MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TOPIC_ARN_RE = re.compile(r"arn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):\d{12}:[A-Za-z0-9_.-]{1,256}")


# --- parsing --------------------------------------------------------------------------------------


def sns_message_parse(body: bytes, headers: dict[str, str] | None = None) -> dict[str, str]:
    """The delivery's JSON object, checked for the fields its Type needs (all strings) and against
    the ``x-amz-sns-*`` headers when they are present."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidSnsMessage(f"The delivery is larger than {MAX_BODY_BYTES} bytes.")
    message = parse_json_body(body, error=InvalidSnsMessage)
    if not isinstance(message, dict):
        raise InvalidSnsMessage("The body is not a JSON object.")
    kind = message.get("Type")
    if kind not in SIGNED_FIELDS:
        raise InvalidSnsMessage(f"Unknown SNS message type {kind!r}.")
    missing = [f for f in REQUIRED_FIELDS[kind] if not isinstance(message.get(f), str) or not message[f]]
    if "Subject" in message and message["Subject"] is not None and not isinstance(message["Subject"], str):
        missing.append("Subject")
    if missing:
        raise InvalidSnsMessage(f"The {kind} lacks string fields: {', '.join(missing)}.")
    if not _MESSAGE_ID_RE.fullmatch(message["MessageId"]):
        raise InvalidSnsMessage("The MessageId is not an SNS message id.")
    if not _TOPIC_ARN_RE.fullmatch(message["TopicArn"]):
        raise InvalidSnsMessage("The TopicArn is not an SNS topic ARN.")
    if message["SignatureVersion"] not in SIGNATURE_HASHES:
        raise InvalidSnsMessage(f"Signature version {message['SignatureVersion']!r} is not supported (1 or 2).")
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    for header, field in (
        ("x-amz-sns-message-type", "Type"),
        ("x-amz-sns-message-id", "MessageId"),
        ("x-amz-sns-topic-arn", "TopicArn"),
    ):
        if lowered.get(header) and lowered[header] != message[field]:
            raise InvalidSnsMessage(f"The {header} header does not match the body's {field}.")
    return message


def sns_timestamp_check(message: dict[str, str], *, now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    try:
        stamp = datetime.fromisoformat(message["Timestamp"].replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidSnsMessage("The Timestamp is not an ISO 8601 time.") from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    if now - stamp > MAX_AGE:
        raise StaleSnsMessage(f"The message is from {message['Timestamp']}, more than an hour ago.")
    if stamp - now > MAX_CLOCK_SKEW:
        raise StaleSnsMessage(f"The message is from {message['Timestamp']}, in the future.")
    return stamp


def sns_topic_check(message: dict[str, str]) -> None:
    if message["TopicArn"] not in settings.TROY_SNS_TOPIC_ARNS:
        raise UnknownTopic(f"Topic {message['TopicArn']} is not one this service listens to.")


# --- the signature --------------------------------------------------------------------------------


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """``key\\nvalue\\n`` for each signed field present, in SNS's order."""
    parts = []
    for key in SIGNED_FIELDS[message["Type"]]:
        value = message.get(key)
        if value is None:
            continue
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode("utf-8")


def signing_cert_url_check(url: str) -> str:
    """Refuse any signing-certificate URL that is not SNS's own: https, host
    ``sns.<region>.amazonaws.com`` (or ``.amazonaws.com.cn``), a ``.pem`` path, no userinfo,
    query, fragment or port other than 443."""

    def refuse(why: str) -> InvalidSigningCertUrl:
        return InvalidSigningCertUrl(f"SigningCertURL refused: {why}.")

    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url):
        raise refuse("it contains spaces, control characters or backslashes")
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise refuse("it is not https")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise refuse("it carries userinfo")
    try:
        port = parts.port
    except ValueError as exc:
        raise refuse("its port is not a number") from exc
    if port not in (None, 443):
        raise refuse("its port is not 443")
    host = parts.hostname or ""
    if not _CERT_HOST_RE.fullmatch(host) or host != parts.netloc.split(":")[0]:
        raise refuse(f"{host or 'no host'} is not an sns.<region>.amazonaws.com host")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise refuse("it has a query or fragment")
    if not parts.path.endswith(".pem") or "/../" in parts.path or "/./" in parts.path:
        raise refuse("its path is not a .pem file")
    return url


_cert_cache: OrderedDict[str, x509.Certificate] = OrderedDict()
_cert_lock = threading.Lock()


def certificate_cache_clear() -> None:
    with _cert_lock:
        _cert_cache.clear()


def _download_certificate(url: str) -> bytes:
    """GET the certificate: no redirects followed, a short timeout, at most 64 KiB."""
    try:
        with requests.get(
            url,
            allow_redirects=False,
            timeout=CERT_TIMEOUT,
            stream=True,
            headers={"User-Agent": "troy-deployment-service"},
        ) as response:
            if 500 <= response.status_code < 600:
                raise CertificateUnavailable(f"The signing certificate host answered {response.status_code}.")
            if response.status_code != 200:
                raise InvalidCertificate(
                    f"The signing certificate URL answered {response.status_code}"
                    + (" (a redirect, not followed)." if response.is_redirect else ".")
                )
            data = b""
            for chunk in response.iter_content(8192):
                data += chunk
                if len(data) > MAX_CERT_BYTES:
                    raise InvalidCertificate("The signing certificate is too large.")
            return data
    except requests.RequestException as exc:
        raise CertificateUnavailable(f"The signing certificate could not be fetched: {type(exc).__name__}.") from exc


def signing_certificate(url: str) -> x509.Certificate:
    """The certificate at ``url`` (already checked), from the in-process cache or downloaded."""
    with _cert_lock:
        cached = _cert_cache.get(url)
        if cached is not None:
            _cert_cache.move_to_end(url)
            return cached
    data = _download_certificate(url)
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise InvalidCertificate("The signing certificate is not a PEM certificate.") from exc
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise InvalidCertificate("The signing certificate does not hold an RSA key.")
    with _cert_lock:
        _cert_cache[url] = cert
        while len(_cert_cache) > CERT_CACHE_SIZE:
            _cert_cache.popitem(last=False)
    return cert


def sns_signature_verify(message: dict[str, str], *, now: datetime | None = None) -> None:
    """Raise unless the message is signed by the key of its (SNS-hosted, currently valid) certificate."""
    url = signing_cert_url_check(message["SigningCertURL"])
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSnsSignature("The Signature is not base64.") from exc
    cert = signing_certificate(url)
    now = now or timezone.now()
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise InvalidCertificate("The signing certificate is not valid now.")
    hash_cls = SIGNATURE_HASHES[message["SignatureVersion"]]
    try:
        cert.public_key().verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), hash_cls())
    except CryptoInvalidSignature as exc:
        raise InvalidSnsSignature("The signature does not match the message.") from exc


# --- receiving ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    status: str  # "queued", "duplicate" or "logged"
    message_id: str
    http_status: int = http_status.HTTP_200_OK


def sns_delivery_receive(*, body: bytes, headers: dict[str, str] | None = None) -> Receipt:
    """Verify and store one delivery; enqueue its handling on commit. Raises an
    :class:`ApplicationError` (4xx/503, nothing stored) for anything that is not a genuine,
    fresh delivery from an allowed topic."""
    message = sns_message_parse(body, headers)
    sns_topic_check(message)
    sns_timestamp_check(message)
    if settings.TROY_SNS_VERIFY_SIGNATURES:
        sns_signature_verify(message)
    else:  # only ever with DEBUG (settings refuses otherwise): local emulators sign with nothing
        logger.warning("SNS signature NOT verified (TROY_SNS_VERIFY_SIGNATURES=0) for %s", message["MessageId"])

    kind = message["Type"]
    with transaction.atomic():
        try:
            with transaction.atomic():
                delivery = SnsDelivery.objects.create(
                    message_id=message["MessageId"],
                    message_type=kind,
                    topic_arn=message["TopicArn"],
                    subject=(message.get("Subject") or "")[:512],
                    body=message,
                )
        except IntegrityError:
            logger.info("SNS message %s delivered again: nothing new", message["MessageId"])
            return Receipt("duplicate", message["MessageId"])
        if kind == UNSUBSCRIBE_CONFIRMATION:
            logger.warning(
                "SNS says topic %s unsubscribed this endpoint (message %s)", message["TopicArn"], message["MessageId"]
            )
            SnsDelivery.objects.filter(pk=delivery.pk).update(
                processed_at=timezone.now(),
                result="logged: the subscription was removed; subscribe again to receive CodeBuild events",
            )
            return Receipt("logged", message["MessageId"])
        pk = delivery.pk
        send_on_commit("handle_sns_delivery", pk)
    return Receipt("queued", message["MessageId"])


# --- handling (worker) ----------------------------------------------------------------------------


def sns_delivery_handle(*, delivery_pk: int) -> str | None:
    """Handle a stored delivery once. Notification: its Message is a CodeBuild event, applied to
    its build. SubscriptionConfirmation: ConfirmSubscription in the topic's region. Returns the
    result kept on the delivery, or None when it was handled before."""
    delivery = SnsDelivery.objects.filter(pk=delivery_pk).first()
    if delivery is None or delivery.processed_at is not None:
        return None
    message = delivery.body

    if delivery.message_type == SUBSCRIPTION_CONFIRMATION:
        # A network call: no row lock held. ConfirmSubscription is idempotent, so a repeat is harmless.
        arn = sns_confirm_subscription(topic_arn=message["TopicArn"], token=message["Token"])
        result = f"confirmed: subscription {arn}"
        SnsDelivery.objects.filter(pk=delivery_pk, processed_at__isnull=True).update(
            processed_at=timezone.now(), result=result
        )
        return result

    with transaction.atomic():
        delivery = SnsDelivery.objects.select_for_update().filter(pk=delivery_pk).first()
        if delivery is None or delivery.processed_at is not None:
            return None
        try:
            event = parse_json_body(message.get("Message") or "")
        except ApplicationError:  # not JSON, too deep, NUL: ignored with the reason, never retried
            event = None
        if delivery.message_type != NOTIFICATION:
            result = f"ignored: nothing to do for {delivery.message_type}"
        elif not isinstance(event, dict):
            result = "ignored: the Message is not a JSON event"
        else:
            result = codebuild_event_apply(event)
        delivery.processed_at = timezone.now()
        delivery.result = result
        delivery.save(update_fields=["processed_at", "result"])
    logger.info("SNS message %s: %s", delivery.message_id, result)
    return result
