"""A stand-in for Enhetsregisteret's open API on loopback, so no test calls the internet.

It answers GET /enhetsregisteret/api/enheter/{orgnr} the way the register documents it
(https://data.brreg.no/enhetsregisteret/api/dokumentasjon/, brreg/openAPI
specs/enhetsregisteret.yml): 200 with the entity, 404 for a number it does not know (the
default), 410 for an entity that was removed. A test says what a number answers with
`answer(...)`, optionally after a delay (past the portal's timeout) or as a broken body.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/enhetsregisteret/api"


def entity(org_number: str, name: str = "Fjordverktøy AS", **overrides: Any) -> dict[str, Any]:
    """An entity in the register's documented shape (an active AS in Trondheim)."""
    body: dict[str, Any] = {
        "organisasjonsnummer": org_number,
        "navn": name,
        "organisasjonsform": {
            "kode": "AS",
            "beskrivelse": "Aksjeselskap",
            "_links": {"self": {"href": f"{PREFIX}/organisasjonsformer/AS"}},
        },
        "registreringsdatoEnhetsregisteret": "2011-03-14",
        "registrertIMvaregisteret": True,
        "naeringskode1": {"kode": "46.630", "beskrivelse": "Engroshandel med maskiner"},
        "antallAnsatte": 12,
        "forretningsadresse": {
            "land": "Norge",
            "landkode": "NO",
            "postnummer": "7042",
            "poststed": "TRONDHEIM",
            "adresse": ["Haakon VIIs gate 9", "Bygg C"],
            "kommune": "TRONDHEIM",
            "kommunenummer": "5001",
        },
        "postadresse": {
            "land": "Norge",
            "landkode": "NO",
            "postnummer": "7401",
            "poststed": "TRONDHEIM",
            "adresse": ["Postboks 123 Sentrum"],
            "kommune": "TRONDHEIM",
            "kommunenummer": "5001",
        },
        "stiftelsesdato": "2011-02-28",
        "institusjonellSektorkode": {"kode": "2100", "beskrivelse": "Private aksjeselskaper mv."},
        "registrertIForetaksregisteret": True,
        "registrertIStiftelsesregisteret": False,
        "registrertIFrivillighetsregisteret": False,
        "konkurs": False,
        "underAvvikling": False,
        "underTvangsavviklingEllerTvangsopplosning": False,
        "maalform": "Bokmål",
        "_links": {"self": {"href": f"{PREFIX}/enheter/{org_number}"}},
    }
    body.update(overrides)
    return body


def _error_body(status: int, path: str, message: str) -> dict[str, Any]:
    reasons = {404: "Not Found", 410: "Gone", 500: "Internal Server Error"}
    return {
        "timestamp": "2026-12-01T12:00:00.000+00:00",
        "status": status,
        "error": reasons.get(status, ""),
        "message": message,
        "path": path,
    }


@dataclass
class _Answer:
    status: int
    body: bytes
    delay: float


class FakeRegister:
    """The register's answers by organisation number, and the numbers it was asked for."""

    def __init__(self) -> None:
        self._answers: dict[str, _Answer] = {}
        self.asked: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    def answer(
        self,
        org_number: str,
        status: int = 200,
        body: dict[str, Any] | bytes | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        path = f"{PREFIX}/enheter/{org_number}"
        if body is None:
            body = entity(org_number) if status == 200 else _error_body(status, path, "")
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self._answers[org_number] = _Answer(status, raw, delay)

    def start(self) -> FakeRegister:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        register = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                prefix = f"{PREFIX}/enheter/"
                org_number = path.removeprefix(prefix) if path.startswith(prefix) else ""
                register.asked.append(org_number)
                found = register._answers.get(org_number)
                if found is None:
                    message = f"Ingen enhet med organisasjonsnummer {org_number} ble funnet"
                    found = _Answer(404, json.dumps(_error_body(404, path, message)).encode(), 0)
                if found.delay:
                    time.sleep(found.delay)
                try:
                    self.send_response(found.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(found.body)))
                    self.end_headers()
                    self.wfile.write(found.body)
                except OSError:
                    pass  # the portal gave up waiting, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
