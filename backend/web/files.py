"""Attachments as responses: always a download, unless the bytes are a PNG or JPEG that a
thread shows as a thumbnail (services/attachments.py decides which)."""

from __future__ import annotations

from pathlib import Path

from litestar.response import File

from backend.services import attachments
from backend.services.errors import NotFound
from backend.tables import Attachment

# On top of every page's policy (web/security.py): a file opened in the browser runs nothing,
# loads nothing and is its own origin, whatever it holds.
FILE_CONTENT_SECURITY_POLICY = "default-src 'none'; img-src 'self'; sandbox"


def attachment_response(attachment: Attachment, path: Path, *, inline: bool = False) -> File:
    """The file, as a download (`attachment`, application/octet-stream unless a verified
    PNG/JPEG) or, with `inline`, shown as the image it is: only a verified PNG/JPEG, else 404.
    nosniff comes with every response (web/security.py)."""
    shown_as = attachments.inline_type(attachment.content_type)
    if inline and shown_as is None:
        raise NotFound("only a PNG or JPEG is shown inline")
    disposition = "inline" if inline else "attachment"
    return File(
        path=path,
        media_type=shown_as or attachments.OCTET_STREAM,
        headers={
            "content-disposition": attachments.content_disposition(
                attachment.filename, disposition
            ),
            "content-security-policy": FILE_CONTENT_SECURITY_POLICY,
        },
    )
