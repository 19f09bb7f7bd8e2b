"""Languages: Norwegian bokmål is the source language of every text; English is a translation.

Messages are written in Norwegian and looked up in `frontend/translations/<lang>/messages.mo`
(compiled by the Makefile), so a text that has no translation still shows in Norwegian.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "frontend" / "translations"
DEFAULT_LANGUAGE = "nb"
LANGUAGES = {"nb": "Norsk", "en": "English"}
BABEL_LOCALES = {"nb": "nb_NO", "en": "en_GB"}

current_language: ContextVar[str] = ContextVar("current_language", default=DEFAULT_LANGUAGE)


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


@cache
def translations_for(language: str) -> NullTranslations:
    if language == DEFAULT_LANGUAGE:
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS_DIR), [language], domain="messages")


def gettext(message: str) -> str:
    return translations_for(current_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations_for(current_language.get()).ngettext(singular, plural, n)


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """Texts in `language` inside the block, whatever the request's language."""
    token = current_language.set(language)
    try:
        yield
    finally:
        current_language.reset(token)


def babel_locale() -> str:
    return BABEL_LOCALES[current_language.get()]
