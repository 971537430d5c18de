"""The account pages' templates say nothing untranslatable: every visible text is a message
id (`_()` or a `{% trans %}` block), so a language's catalog covers the whole page; and the
messages the Python side passes are ids of their own (messages.py), never a person's input."""

import re
from pathlib import Path

from app.web.account import messages
from app.web.pages import HERE

TEMPLATES = sorted((HERE / "templates" / "account").glob("*.html"))
JINJA = re.compile(r"\{#.*?#\}|\{%-? *trans\b.*?endtrans *-?%\}|\{\{.*?\}\}|\{%.*?%\}", re.S)
TAG = re.compile(r"<[^>]*>", re.S)


def visible_text(path: Path) -> list[str]:
    text = TAG.sub(" ", JINJA.sub(" ", path.read_text()))
    return [word for word in text.split() if re.search(r"\w", word)]


def test_every_visible_text_of_the_account_templates_is_marked() -> None:
    assert TEMPLATES
    unmarked = {path.name: words for path in TEMPLATES if (words := visible_text(path))}
    assert unmarked == {}


def test_every_attribute_text_is_marked_too() -> None:
    for path in TEMPLATES:
        for name, value in re.findall(
            r'\b(aria-label|title|placeholder|alt)="([^"]*)"', path.read_text()
        ):
            # The logo's alternative text is the service's name (BRAND_NAME), not a message.
            assert value.startswith("{{ _(") or value == "{{ brand.name }}", (
                path.name,
                name,
                value,
            )


def test_page_messages_are_constants_with_named_arguments() -> None:
    texts = [v for name, v in vars(messages).items() if name.isupper() and isinstance(v, str)]
    assert len(texts) > 10
    for text in texts:
        # newstyle gettext formats every message: only %(name)s placeholders, no bare %
        assert re.sub(r"%\(\w+\)s", "", text).count("%") == 0, text
