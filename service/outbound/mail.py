"""Sends e-mail over SMTP (standard library, run in a worker thread)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = "invoices@localhost"
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Part:
    file_name: str
    content_type: str
    data: bytes


class MailError(Exception):
    """The SMTP server refused or could not be reached."""


def _send(cfg: SmtpSettings, message: EmailMessage) -> None:
    try:
        with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout) as smtp:
            if cfg.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from exc


async def send(cfg: SmtpSettings, to: list[str], subject: str, body: str, parts: list[Part]) -> None:
    message = EmailMessage()
    message["From"] = cfg.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    for part in parts:
        maintype, _, subtype = part.content_type.partition("/")
        message.add_attachment(part.data, maintype=maintype, subtype=subtype or "octet-stream", filename=part.file_name)
    await asyncio.to_thread(_send, cfg, message)
