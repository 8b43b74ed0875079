"""Test support for SNS deliveries: our own RSA key and self-signed certificate, messages signed
the way SNS signs them (versions 1 and 2), and the certificate download stubbed at the HTTP level
(``responses``), so everything else (URL checks, no redirects, parsing, cache) runs for real."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from hooks.sns import sns_string_to_sign

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TOPIC = "arn:aws:sns:us-east-1:123456789012:troy-codebuild"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"


class Signer:
    """An RSA key with a self-signed certificate, like SNS's signing certificate."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: dict, version: str = "2") -> dict:
        """``message`` with SignatureVersion and Signature set, over SNS's string to sign."""
        message = dict(message, SignatureVersion=version)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return message


def now_stamp(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


def notification(
    event: dict | str,
    *,
    message_id: str | None = None,
    subject: str | None = None,
    timestamp: str | None = None,
    topic: str = TOPIC,
    cert_url: str = CERT_URL,
) -> dict:
    """An unsigned Notification shaped like tests/fixtures/sns-notification.json."""
    message = json.loads((FIXTURES / "sns-notification.json").read_text())
    message.update(
        {
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": event if isinstance(event, str) else json.dumps(event),
            "Timestamp": timestamp or now_stamp(),
            "SigningCertURL": cert_url,
        }
    )
    if subject is not None:
        message["Subject"] = subject
    return message


def subscription_confirmation(*, message_id: str | None = None, topic: str = TOPIC) -> dict:
    message = json.loads((FIXTURES / "sns-subscription-confirmation.json").read_text())
    message.update(
        {
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic,
            "Timestamp": now_stamp(),
            "SigningCertURL": CERT_URL,
        }
    )
    return message


def unsubscribe_confirmation(*, topic: str = TOPIC) -> dict:
    message = subscription_confirmation(topic=topic)
    message.update(
        {"Type": "UnsubscribeConfirmation", "Message": f"You have chosen to deactivate subscription to {topic}."}
    )
    return message


def post(client, message: dict | bytes | str, **headers):
    """POST a delivery as SNS does: JSON as text/plain, with the x-amz-sns-* headers."""
    if isinstance(message, dict):
        body = json.dumps(message)
        headers.setdefault("HTTP_X_AMZ_SNS_MESSAGE_TYPE", str(message.get("Type", "")))
        headers.setdefault("HTTP_X_AMZ_SNS_MESSAGE_ID", str(message.get("MessageId", "")))
        headers.setdefault("HTTP_X_AMZ_SNS_TOPIC_ARN", str(message.get("TopicArn", "")))
        return client.post("/hooks/sns/", data=body, content_type="text/plain; charset=UTF-8", **headers)
    # Raw bytes as they are (the test client would re-encode them for a charset content type).
    return client.post("/hooks/sns/", data=message, content_type="text/plain", **headers)
