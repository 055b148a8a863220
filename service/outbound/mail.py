"""Builds and sends e-mail over SMTP (standard library, in a worker thread, within an overall timeout).

Headers are built with email.policy.SMTP from text that cannot add a header or a body line: client text
is checked (or folded) after RFC 2047 decoding, so neither raw nor encoded line breaks get through.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

_POLICY = policy.SMTP
# Control characters and everything str.splitlines() breaks on (U+0085, U+2028, U+2029, ...).
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = "invoices@localhost"
    timeout: float = 30.0  # each socket operation
    send_timeout: float = 60.0  # the whole conversation


@dataclass(frozen=True, slots=True)
class Part:
    file_name: str
    content_type: str
    data: bytes


class MailError(Exception):
    """The SMTP server refused, could not be reached, or did not finish in time."""

    def __init__(self, message: str, maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


def shown(raw: str) -> str:
    """The text a header holding `raw` shows once read: RFC 2047 encoded words decoded."""
    return str(_POLICY.header_factory("subject", _BREAKS.sub(" ", raw)))


def header_safe(raw: str) -> bool:
    """Whether `raw` can be a header as it is: no line break or control character, raw or encoded."""
    return not _BREAKS.search(raw) and not _BREAKS.search(shown(raw))


def fold(raw: str) -> str:
    """`raw` made header-safe: what it shows, control characters and line breaks as spaces, and no
    encoded-word syntax left to decode a second time."""
    return _BREAKS.sub(" ", shown(raw)).replace("=?", "= ?")


def message_id(entry_id: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "invoice-service"
    return f"<{entry_id}@{fold(domain).replace(' ', '')}>"


def build(cfg: SmtpSettings, to: list[str], subject: str, body: str, parts: list[Part], msg_id: str) -> EmailMessage:
    """The message; `subject` must be header_safe (the caller checks or folds it)."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = cfg.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject if header_safe(subject) else fold(subject)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = msg_id
    message.set_content(body)
    for part in parts:
        maintype, _, subtype = part.content_type.partition("/")
        message.add_attachment(
            part.data, maintype=maintype, subtype=subtype or "octet-stream", filename=fold(part.file_name)
        )
    return message


class _Conversation:
    """One SMTP conversation in a worker thread; `abort` cuts its socket when the overall time is up."""

    def __init__(self, cfg: SmtpSettings) -> None:
        self.cfg = cfg
        self.smtp: smtplib.SMTP | None = None
        self.data_sent = False

    def run(self, message: EmailMessage, recipients: list[str]) -> None:
        cfg = self.cfg
        try:
            with smtplib.SMTP(timeout=cfg.timeout) as smtp:
                self.smtp = smtp
                smtp.connect(cfg.host, cfg.port)
                if cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.username:
                    smtp.login(cfg.username, cfg.password)
                self.data_sent = True  # from here on the server may take the message before we hear it did
                smtp.send_message(message, cfg.sender, recipients)
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as exc:  # a refusal: not taken
            raise MailError(f"{type(exc).__name__}: {exc}", maybe_delivered=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}", maybe_delivered=self.data_sent) from exc

    def abort(self) -> None:
        sock = self.smtp.sock if self.smtp is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


async def send(cfg: SmtpSettings, message: EmailMessage, recipients: list[str]) -> None:
    """Delivers `message` within cfg.send_timeout, or raises MailError."""
    conversation = _Conversation(cfg)
    job = asyncio.ensure_future(asyncio.to_thread(conversation.run, message, recipients))
    job.add_done_callback(lambda f: f.cancelled() or f.exception())  # an aborted conversation's error is known
    try:
        await asyncio.wait_for(asyncio.shield(job), cfg.send_timeout)
    except TimeoutError:
        conversation.abort()
        raise MailError(
            f"the mail server did not finish within {cfg.send_timeout:g} s",
            maybe_delivered=conversation.data_sent,
        ) from None
