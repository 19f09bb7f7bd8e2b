"""/dev/mail: the mails the development sender wrote as files (no SMTP_URL), to read in the
browser. Registered only outside production (backend/app.py), so production answers 404."""

from __future__ import annotations

from litestar import Controller, MediaType, Request, get
from litestar.params import FromPath
from litestar.response import Response, Template

from backend.services import outbox
from backend.web.templating import page


class DevMailController(Controller):
    path = "/dev/mail"

    @get("/", name="dev_mail")
    async def mails(self, request: Request) -> Template:
        settings = request.app.state.settings
        return page(
            request,
            "dev/mail.html",
            mails=outbox.stored_mails(settings.mail_dir),
            directory=settings.mail_dir,
            smtp=settings.smtp_url is not None,
        )

    @get("/{name:str}", name="dev_mail_message")
    async def mail(self, request: Request, name: FromPath[str]) -> Template:
        mail = outbox.stored_mail(request.app.state.settings.mail_dir, name)
        return page(request, "dev/mail_message.html", mail=mail)

    @get("/{name:str}/html", name="dev_mail_html", media_type=MediaType.HTML)
    async def mail_html(self, request: Request, name: FromPath[str]) -> Response[str]:
        """The HTML part as the mail program gets it (the pages' CSP still applies)."""
        mail = outbox.stored_mail(request.app.state.settings.mail_dir, name)
        return Response(mail.part("html"), media_type=MediaType.HTML)
