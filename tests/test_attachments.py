"""Files on tickets (issue 11): sent with a ticket or a reply on the web, kept under
ATTACHMENT_DIR with a random name, served only to the ticket's company and to staff, always
as a download, and shown as a thumbnail only when the bytes are a PNG or JPEG."""

from __future__ import annotations

import hashlib
import html
import re
import struct
import zlib
from pathlib import Path

import pytest

from backend.services import attachments, catalog, tickets
from backend.services.attachments import MB, IncomingFile
from backend.services.errors import ValidationFailed
from backend.services.users import create_staff, hash_password
from backend.tables import Attachment, Role, Ticket, TicketMessage, User
from tests.support import PASSWORD, csrf_token, login, make_company, new_email


def png_bytes(width: int = 2, height: int = 1) -> bytes:
    """A real (tiny) PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
HTML = b"<!doctype html><script>alert(document.cookie)</script>"
LOG = b"2026-12-01 10:00 Inventor krasjet ved lagring\n" * 20
THUMBNAIL = re.compile(r'<img class="attachment-thumbnail" src="([^"]+)"')
DOWNLOAD = re.compile(
    r'<a href="(/(?:portal|staff)/tickets/\d+/attachments/\d+)" download>([^<]*)</a>'
)


@pytest.fixture(autouse=True)
async def demo_catalog():
    await catalog.seed_demo_catalog()


async def signed_in_superuser(client) -> User:
    _, email = await make_company("Vedleggsfirma AS")
    assert (await login(client, email)).status_code == 303
    return await User.objects().get(User.email == email)


async def signed_in_member(client, company_id: int) -> User:
    email = new_email("kollega")
    member = User(
        email=email,
        name="Kollega Medlem",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password(PASSWORD),
    )
    await member.save()
    assert (await login(client, email)).status_code == 303
    return member


async def signed_in_staff(client) -> User:
    email = new_email("tekniker")
    user = await create_staff(
        email=email, name="Tina Tekniker", role="technician", password=PASSWORD
    )
    assert (await login(client, email)).status_code == 303
    return user


async def a_ticket(superuser: User) -> Ticket:
    return await tickets.open_ticket(
        superuser, {"product": "inventor", "subject": "Krasj", "description": "Ved lagring."}
    )


async def post_files(client, path: str, data: dict[str, str], files: list, **headers: str):
    token = await csrf_token(client)
    return await client.post(
        path,
        data={**data, "_csrf_token": token},
        files=[("files", file) for file in files],
        headers=headers,
        follow_redirects=False,
    )


def downloads(page: str) -> dict[str, str]:
    """File name → download address, of the thread on `page`."""
    return {html.unescape(name): url for url, name in DOWNLOAD.findall(page)}


def field_error(page: str, field: str) -> str:
    match = re.search(rf'<small id="d-{field}" class="field-error">([^<]*)</small>', page)
    return html.unescape(match.group(1)) if match else ""


def textarea(page: str, name: str = "body") -> str:
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>([^<]*)</textarea>', page)
    return html.unescape(match.group(1)) if match else ""


async def rows(ticket_id: int) -> list[dict]:
    """The ticket's attachment rows (the test run shares one database)."""
    return await Attachment.select().where(Attachment.ticket == ticket_id).order_by(Attachment.id)


# Sending and downloading


async def test_a_customer_reply_carries_files_that_download_unchanged(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    picture = png_bytes()

    response = await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "Her er loggen og et skjermbilde."},
        [("inventor.log", LOG, "text/plain"), ("skjerm.png", picture, "image/png")],
    )

    assert response.status_code == 303
    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    links = downloads(page)
    assert set(links) == {"inventor.log", "skjerm.png"}
    log = await client.get(links["inventor.log"])
    assert log.status_code == 200
    assert log.content == LOG
    assert log.headers["content-type"] == "application/octet-stream"
    assert log.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''inventor.log" in log.headers["content-disposition"]
    assert log.headers["x-content-type-options"] == "nosniff"
    # The page's policy and the file's own, stricter one: a browser enforces both.
    policies = log.headers.get_list("content-security-policy")
    assert "default-src 'none'; img-src 'self'; sandbox" in policies
    image = await client.get(links["skjerm.png"])
    assert image.content == picture
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("attachment;")
    # The size, as people read it.
    assert f"({len(LOG)} B)" in page or "kB)" in page


async def test_a_ticket_opened_on_the_web_carries_files(client):
    superuser = await signed_in_superuser(client)

    response = await post_files(
        client,
        "/portal/tickets",
        {"product": "inventor", "subject": "Krasj med fil", "description": "Se vedlagt."},
        [("modell.ipt", b"\x00\x01ipt-data", "application/octet-stream")],
    )

    assert response.status_code == 303
    page = (await client.get(response.headers["location"])).text
    [(name, url)] = downloads(page).items()
    assert name == "modell.ipt"
    assert (await client.get(url)).content == b"\x00\x01ipt-data"
    ticket = await Ticket.objects().get(Ticket.company == superuser.company)
    [row] = await rows(ticket.id)
    assert row["message"] is None  # the ticket's own file


async def test_a_staff_reply_carries_files_the_customer_downloads(client, other_client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    await signed_in_staff(other_client)

    response = await post_files(
        other_client,
        f"/staff/tickets/{ticket.id}/messages",
        {"body": "Prøv denne oppdateringen."},
        [("fiks.zip", b"PK\x03\x04" + b"z" * 100, "application/zip")],
    )

    assert response.status_code == 303
    staff_page = (await other_client.get(f"/staff/tickets/{ticket.id}")).text
    staff_url = downloads(staff_page)["fiks.zip"]
    assert staff_url.startswith(f"/staff/tickets/{ticket.id}/attachments/")
    assert (await other_client.get(staff_url)).content == b"PK\x03\x04" + b"z" * 100
    customer_url = downloads((await client.get(f"/portal/tickets/{ticket.id}")).text)["fiks.zip"]
    download = await client.get(customer_url)
    assert download.content == b"PK\x03\x04" + b"z" * 100
    assert download.headers["content-type"] == "application/octet-stream"


async def test_htmx_sends_the_form_as_multipart(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    form = (await client.get(f"/portal/tickets/{ticket.id}")).text
    reply_form = re.search(r'<form id="reply-form"[^>]*>', form).group(0)
    assert 'enctype="multipart/form-data"' in reply_form
    assert 'hx-encoding="multipart/form-data"' in reply_form
    assert re.search(r'<input id="f-files" name="files" type="file" multiple', form)

    response = await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "Med htmx."},
        [("a.txt", b"a", "text/plain"), ("b.txt", b"b", "text/plain")],
        **{"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert response.headers["hx-redirect"] == f"/portal/tickets/{ticket.id}"
    assert [r["filename"] for r in await rows(ticket.id)] == ["a.txt", "b.txt"]


async def test_an_empty_file_field_is_no_file(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)

    response = await post_files(
        client, f"/portal/tickets/{ticket.id}/messages", {"body": "Uten fil."}, [("", b"", "")]
    )

    assert response.status_code == 303
    assert await rows(ticket.id) == []


# Who gets them


async def files_on_a_ticket(client) -> tuple[Ticket, str]:
    """A ticket of a fresh company with a file on a reply: (ticket, the file's address)."""
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "Skjermbilde."},
        [("skjerm.png", png_bytes(), "image/png")],
    )
    url = downloads((await client.get(f"/portal/tickets/{ticket.id}")).text)["skjerm.png"]
    return ticket, url


async def test_another_companys_user_gets_404(client, other_client):
    _, url = await files_on_a_ticket(client)
    await signed_in_superuser(other_client)

    assert (await other_client.get(url)).status_code == 404
    assert (await other_client.get(f"{url}/image")).status_code == 404


async def test_a_mismatched_ticket_id_is_404(client):
    ticket, url = await files_on_a_ticket(client)
    superuser = await User.objects().get(User.id == ticket.opened_by)
    other_ticket = await a_ticket(superuser)  # the same company's
    attachment_id = url.rsplit("/", 1)[1]

    wrong = f"/portal/tickets/{other_ticket.id}/attachments/{attachment_id}"

    assert (await client.get(wrong)).status_code == 404
    assert (await client.get(f"{wrong}/image")).status_code == 404


async def test_a_member_of_the_same_company_downloads(client, other_client):
    ticket, url = await files_on_a_ticket(client)
    await signed_in_member(other_client, ticket.company)

    response = await other_client.get(url)

    assert response.status_code == 200
    assert response.content == png_bytes()


async def test_staff_download_through_their_own_route_only(client, other_client):
    _, url = await files_on_a_ticket(client)
    await signed_in_staff(other_client)

    assert (await other_client.get(url.replace("/portal/", "/staff/"))).status_code == 200
    # The customer's route is the customer's (the policy's view_company).
    assert (await other_client.get(url)).status_code == 403
    assert (await client.get(url.replace("/portal/", "/staff/"))).status_code == 403


async def test_an_internal_notes_files_are_never_served_to_customers(client, other_client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    await signed_in_staff(other_client)
    await post_files(
        other_client,
        f"/staff/tickets/{ticket.id}/messages",
        {"body": "Kunden har feil lisens.", "internal": "1"},
        [("lisens.png", png_bytes(), "image/png")],
    )
    staff_page = (await other_client.get(f"/staff/tickets/{ticket.id}")).text
    staff_url = downloads(staff_page)["lisens.png"]
    assert (await other_client.get(staff_url)).status_code == 200

    customer_page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    assert "lisens.png" not in customer_page
    customer_url = staff_url.replace("/staff/", "/portal/")
    assert (await client.get(customer_url)).status_code == 404
    assert (await client.get(f"{customer_url}/image")).status_code == 404


# Sizes


async def test_a_file_over_10_mb_is_refused_and_the_text_kept(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    typed = "Loggen er stor, men teksten min skal ikke forsvinne."

    response = await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": typed},
        [("stor.log", b"x" * (10 * MB + 1), "text/plain")],
    )

    assert response.status_code == 422
    assert field_error(response.text, "files") == (
        "En av filene er større enn 10 MB. En fil kan være på høyst 10 MB."
    )
    assert textarea(response.text) == typed
    assert await TicketMessage.count().where(TicketMessage.ticket == ticket.id) == 0
    assert await rows(ticket.id) == []


async def test_files_over_25_mb_together_are_refused_and_the_text_kept(client, settings):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    typed = "Tre store filer."

    response = await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": typed},
        [(f"del{n}.bin", b"y" * (9 * MB), "application/octet-stream") for n in range(3)],
        **{"HX-Request": "true"},
    )

    assert response.status_code == 422
    assert response.text.lstrip().startswith("<form")  # the form's region, for htmx
    assert field_error(response.text, "files") == (
        "Vedleggene er til sammen for store. En melding kan ha høyst 25 MB."
    )
    assert textarea(response.text) == typed
    assert await rows(ticket.id) == []
    assert not any(Path(settings.attachment_dir).glob("*"))


async def test_10_mb_files_up_to_25_mb_together_go_through(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    sizes = [10 * MB, 10 * MB, 5 * MB]

    response = await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "Akkurat innenfor."},
        [(f"f{n}.bin", b"z" * size, "application/octet-stream") for n, size in enumerate(sizes)],
    )

    assert response.status_code == 303
    assert [r["size"] for r in await rows(ticket.id)] == sizes


async def test_a_body_far_over_the_limit_is_refused_unread(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)

    response = await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "For mye."},
        [("enorm.bin", b"w" * (attachments.REQUEST_BODY_LIMIT + 1), "application/octet-stream")],
    )

    assert response.status_code == 413
    assert await rows(ticket.id) == []


async def test_the_new_ticket_form_keeps_its_fields_when_a_file_is_too_large(client):
    superuser = await signed_in_superuser(client)

    response = await post_files(
        client,
        "/portal/tickets",
        {"product": "inventor", "subject": "Stor fil", "description": "Beskrivelsen min."},
        [("stor.bin", b"x" * (10 * MB + 1), "application/octet-stream")],
    )

    assert response.status_code == 422
    assert field_error(response.text, "files").startswith("En av filene er større enn 10 MB")
    assert textarea(response.text, "description") == "Beskrivelsen min."
    assert 'value="Stor fil"' in response.text
    assert await Ticket.count().where(Ticket.company == superuser.company) == 0


async def test_files_must_be_chosen_again_when_another_field_fails(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)

    response = await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": ""},
        [("logg.txt", b"linje", "text/plain")],
    )

    assert response.status_code == 422
    assert field_error(response.text, "body")
    assert field_error(response.text, "files") == "Vedleggene ble ikke lagret. Velg dem på nytt."
    assert await rows(ticket.id) == []


# Thumbnails: from the bytes, never the name or the browser's word


async def test_a_png_named_txt_shows_a_thumbnail(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "Bilde med feil navn."},
        [("notat.txt", png_bytes(), "text/plain"), ("foto.jpg", JPEG, "application/octet-stream")],
    )
    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    links = downloads(page)

    assert sorted(THUMBNAIL.findall(page)) == sorted(
        [f"{links['notat.txt']}/image", f"{links['foto.jpg']}/image"]
    )
    shown = await client.get(f"{links['notat.txt']}/image")
    assert shown.status_code == 200
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["content-disposition"].startswith("inline;")
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert (await client.get(f"{links['foto.jpg']}/image")).headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("name", "data", "claimed"),
    [
        ("side.png", HTML, "image/png"),
        ("side.html", HTML, "text/html"),
        ("modell.ipt", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "image/png"),
        # A PNG's signature without its header chunk is not a PNG.
        ("halv.png", b"\x89PNG\r\n\x1a\n" + HTML, "image/png"),
        ("vektor.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "image/svg+xml"),
    ],
)
async def test_anything_but_a_png_or_jpeg_never_renders_inline(client, name, data, claimed):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    await post_files(
        client, f"/portal/tickets/{ticket.id}/messages", {"body": "Fil."}, [(name, data, claimed)]
    )
    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    url = downloads(page)[name]

    assert THUMBNAIL.findall(page) == []
    assert (await client.get(f"{url}/image")).status_code == 404
    download = await client.get(url)
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.content == data


# Names and storage


async def test_the_file_is_stored_under_attachment_dir_with_a_random_name(client, settings):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)

    await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "Logg."},
        [("inventor.log", LOG, "text/plain"), ("inventor.log", LOG, "text/plain")],
    )

    first, second = await rows(ticket.id)
    assert first["stored_name"] != second["stored_name"]
    for row in (first, second):
        assert re.fullmatch(r"[0-9a-f]{40}", row["stored_name"])
        stored = Path(settings.attachment_dir) / row["stored_name"]
        assert stored.read_bytes() == LOG
        assert row["sha256"] == hashlib.sha256(LOG).hexdigest()
        assert row["size"] == len(LOG)
        assert row["content_type"] == "application/octet-stream"
        assert stored.stat().st_mode & 0o077 == 0  # only the portal reads it
    assert sorted(p.name for p in Path(settings.attachment_dir).iterdir()) == sorted(
        [first["stored_name"], second["stored_name"]]
    )


def test_attachment_dir_is_configurable_and_defaults_under_the_var_dir(tmp_path):
    from backend.config import load_settings

    default = load_settings({"PORTAL_VAR_DIR": str(tmp_path / "var"), "SECRET_KEY": "k" * 40})
    chosen = load_settings(
        {"PORTAL_VAR_DIR": str(tmp_path), "SECRET_KEY": "k" * 40, "ATTACHMENT_DIR": "/srv/filer"}
    )

    assert default.attachment_dir == tmp_path / "var" / "attachments"
    assert chosen.attachment_dir == Path("/srv/filer")


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("../../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.bat", "evil.bat"),
        ("/absolute/path/rapport.pdf", "rapport.pdf"),
        ("..", "vedlegg"),
        (".htaccess", "htaccess"),
        ("navn\x1bmed\x7fkontroll.txt", "navnmedkontroll.txt"),
        ("høyre\u202etxt.exe", "høyretxt.exe"),
    ],
)
async def test_path_traversal_in_file_names_is_harmless(client, settings, sent, shown):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)

    response = await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "Navn."},
        [(sent, b"innhold", "text/plain")],
    )

    assert response.status_code == 303
    [row] = await rows(ticket.id)
    assert row["filename"] == shown
    assert (Path(settings.attachment_dir) / row["stored_name"]).read_bytes() == b"innhold"
    assert [p.name for p in Path(settings.attachment_dir).iterdir()] == [row["stored_name"]]
    url = downloads((await client.get(f"/portal/tickets/{ticket.id}")).text)[shown]
    assert (await client.get(url)).content == b"innhold"


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("rapport.pdf", "attachment; filename=\"rapport.pdf\"; filename*=UTF-8''rapport.pdf"),
        (
            "Tegning ærlig ø.dwg",
            'attachment; filename="Tegning _rlig _.dwg"; '
            "filename*=UTF-8''Tegning%20%C3%A6rlig%20%C3%B8.dwg",
        ),
        (
            'a";\r\nSet-Cookie: x=1.txt',
            'attachment; filename="a__Set-Cookie: x=1.txt"; '
            "filename*=UTF-8''a%22%3BSet-Cookie%3A%20x%3D1.txt",
        ),
        ("100%.txt", "attachment; filename=\"100_.txt\"; filename*=UTF-8''100%25.txt"),
    ],
)
def test_the_download_names_the_file_safely(name, header):
    assert attachments.content_disposition(name) == header


async def test_a_quote_or_line_break_in_a_name_cannot_add_a_header(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "Rart navn."},
        [('x";\r\nSet-Cookie: stjålet=1.txt', b"data", "text/plain")],
    )
    [(name, url)] = downloads((await client.get(f"/portal/tickets/{ticket.id}")).text).items()

    response = await client.get(url)

    assert "stjålet" not in response.cookies
    assert response.headers["content-disposition"].count(";") == 2
    assert name == 'x";Set-Cookie: stjålet=1.txt'


def test_control_and_format_characters_leave_a_name():
    assert attachments.display_name("a\x00b\r\nc\u202ed\u200be.txt") == "abcde.txt"


def test_a_long_name_keeps_its_extension():
    name = attachments.display_name("a" * 400 + ".ipt")
    assert len(name) == attachments.FILENAME_MAX
    assert name.endswith(".ipt")


# The service, as mail will call it


async def test_store_takes_plain_data_in_the_callers_transaction(client, settings):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    files = [IncomingFile("skjerm.png", "image/png", png_bytes())]

    async with Ticket._meta.db.transaction():
        [row] = await attachments.store(files, ticket_id=ticket.id)

    assert row.content_type == "image/png"
    assert (Path(settings.attachment_dir) / row.stored_name).read_bytes() == png_bytes()
    listed = await attachments.for_ticket(ticket, include_internal=False)
    assert [a.filename for a in listed[None]] == ["skjerm.png"]


def test_check_refuses_with_a_norwegian_message():
    with pytest.raises(ValidationFailed) as refused:
        attachments.check([IncomingFile("stor.bin", "", b"x" * (10 * MB + 1))])
    assert refused.value.errors == {"files": attachments.FILE_TOO_LARGE}
    with pytest.raises(ValidationFailed) as refused:
        attachments.check([IncomingFile(f"{n}.txt", "", b"x") for n in range(11)])
    assert refused.value.errors == {"files": attachments.TOO_MANY_FILES}
    attachments.check([IncomingFile("ok.txt", "", b"x")])  # fine: no error


def test_a_mail_keeps_the_files_within_the_limits_and_names_the_rest():
    big = IncomingFile("stor.bin", "", b"x" * (10 * MB + 1))
    nine = [IncomingFile(f"ni{n}.bin", "", b"y" * (9 * MB)) for n in range(3)]
    empty = IncomingFile("tom.txt", "", b"")
    small = IncomingFile("liten.txt", "", b"z")

    kept, left_out = attachments.within_limits([big, *nine, empty, small])

    assert kept == [nine[0], nine[1], small]
    assert left_out == [big, nine[2], empty]
    attachments.check(kept)  # what is kept always passes


async def test_a_failed_insert_leaves_no_file_behind(client, settings, monkeypatch):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)

    async def broken_save(self, *args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Attachment, "save", broken_save)
    with pytest.raises(RuntimeError):
        await attachments.store(
            [IncomingFile("a.txt", "", b"a"), IncomingFile("b.txt", "", b"b")], ticket_id=ticket.id
        )

    assert list(Path(settings.attachment_dir).glob("*")) == []


async def test_a_file_lost_from_disk_is_not_found_and_logged(client, settings, caplog):
    ticket, url = await files_on_a_ticket(client)
    [row] = await rows(ticket.id)
    (Path(settings.attachment_dir) / row["stored_name"]).unlink()

    assert (await client.get(url)).status_code == 404
    assert f"attachment {row['id']}: its file" in caplog.text


async def test_openapi_shows_the_file_field_of_the_message_forms(client):
    paths = (await client.get("/schema/openapi.json")).json()["paths"]

    for path in (
        "/portal/tickets",
        "/portal/tickets/{ticket_id}/messages",
        "/staff/tickets/{ticket_id}/messages",
    ):
        content = paths[path]["post"]["requestBody"]["content"]
        files = content["multipart/form-data"]["schema"]["properties"]["files"]
        assert files["items"]["format"] == "binary"
        assert files["maxItems"] == attachments.MAX_FILES
        assert "files" not in content["application/x-www-form-urlencoded"]["schema"]["properties"]


async def test_the_size_message_in_english(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    await client.get(f"/language/en?next=/portal/tickets/{ticket.id}")

    response = await post_files(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": "Too big."},
        [(f"part{n}.bin", b"y" * (9 * MB), "application/octet-stream") for n in range(3)],
    )

    assert response.status_code == 422
    assert field_error(response.text, "files") == (
        "The attachments are too large together. A message can have at most 25 MB."
    )
    assert textarea(response.text) == "Too big."


async def test_odd_uploads_are_refused_never_a_500(client):
    superuser = await signed_in_superuser(client)
    ticket = await a_ticket(superuser)
    path = f"/portal/tickets/{ticket.id}/messages"
    token = await csrf_token(client)

    # Text where the files belong: an unknown field, the form again with the text.
    as_text = await client.post(
        path, data={"body": "Tekst.", "files": "ikke en fil", "_csrf_token": token}
    )
    # A multipart body cut off in the middle of a file.
    cut = await client.post(
        path,
        content=b'--grense\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n'
        b"\r\nhalv fil",
        headers={"content-type": "multipart/form-data; boundary=grense", "x-csrftoken": token},
    )
    # No boundary at all.
    no_boundary = await client.post(
        path,
        content=b"x",
        headers={"content-type": "multipart/form-data", "x-csrftoken": token},
    )

    assert as_text.status_code == 422
    assert textarea(as_text.text) == "Tekst."
    assert cut.status_code == 400
    assert no_boundary.status_code == 400
    assert await rows(ticket.id) == []
