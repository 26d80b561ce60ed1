"""The help center: its articles, the figures they quote (read from the code) and their search.

Article text lives in the catalogue (``catalog/help.json``, keys
``help.<slug>.…``); this module says which keys make up each article and fills
their ``{placeholders}`` from the same constants and settings the product
obeys, so the help can never quote a stale limit. Everything here is pure
and in-process: no table, no external search service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import get_settings
from chalicelib.db.partners import DIRECTORY_PREFIX
from chalicelib.domain import aging, logos
from chalicelib.domain.validation import fold
from chalicelib.i18n import translate
from chalicelib.services import (
    custom_fields,
    customers,
    dashboard,
    email_codes,
    export,
    intake,
    partners,
    password_reset,
    users,
)

# Screenshots are written here by the browser suite (tests/e2e/test_help.py) and
# served at /help/img/<name>; the folder is git-ignored, so a fresh clone has none.
SHOTS_DIR = Path(__file__).resolve().parents[1] / "static" / "help"
SHOT_NAME = re.compile(r"^[a-z0-9-]{1,60}\.webp$")
SNIPPET_CHARS = 180
MAX_QUERY_WORDS = 8


@dataclass(frozen=True)
class Shot:
    """A screenshot shown in an article: ``<name>.webp`` and its caption key."""

    name: str
    phone: bool = False

    @property
    def file(self) -> str:
        return f"{self.name}.webp"


@dataclass(frozen=True)
class Section:
    """``help.<slug>.<key>.h`` heading, ``.p1``… paragraphs, ``.li1``… list items."""

    key: str
    paragraphs: int
    items: int = 0
    shots: tuple[Shot, ...] = ()
    # Paragraphs after the list (``.q1``…), when the list sits mid-section.
    after: int = 0


@dataclass(frozen=True)
class Article:
    slug: str
    sections: tuple[Section, ...]
    # Where the capability lives in the app: (path, label key).
    places: tuple[tuple[str, str], ...] = ()


ARTICLES: tuple[Article, ...] = (
    Article(
        "free-plan",
        (Section("price", 2), Section("quota", 3), Section("limits", 0, items=4)),
        (("/orders/new", "nav.new_order"),),
    ),
    Article(
        "devices",
        (
            Section("browser", 2, shots=(Shot("dashboard-phone", phone=True),)),
            Section("team", 2, shots=(Shot("orders-phone", phone=True),)),
            Section("print", 1),
        ),
    ),
    Article(
        "notifications",
        (
            Section("bell", 2, shots=(Shot("notifications"),)),
            Section("kinds", 0, items=6),
            Section("mail", 1),
        ),
        (("/notifications", "nav.notifications"),),
    ),
    Article(
        "search-export",
        (
            Section("list", 1, shots=(Shot("orders-desktop"),)),
            Section("filters", 1, items=6, after=1),
            Section("export", 3),
        ),
        (("/orders", "nav.orders"),),
    ),
    Article(
        "customers",
        (
            Section("link", 3, shots=(Shot("customer-phone", phone=True),)),
            Section("emails", 1),
            Section("chat", 1),
            Section("rating", 2),
        ),
    ),
    Article(
        "partnerships",
        (
            Section("find", 2),
            Section("propose", 2, shots=(Shot("partners-desktop"),)),
            Section("change", 2),
            Section("share", 2),
        ),
        (("/partners", "nav.partners"), ("/partners/directory", "partners.directory")),
    ),
    Article(
        "dashboard-charts",
        (
            Section("aging", 1, items=5, after=2, shots=(Shot("dashboard-aging"),)),
            Section("weeks", 1),
            Section("top", 1),
            Section("example", 2, shots=(Shot("dashboard-desktop"),)),
        ),
        (("/", "nav.dashboard"),),
    ),
    Article(
        "company-info",
        (
            Section("profile", 2, shots=(Shot("settings-company"),)),
            Section("email", 2),
            Section("replyto", 1),
            Section("status", 2),
        ),
        (("/settings/company", "nav.company"),),
    ),
    Article(
        "logo",
        (Section("upload", 3, shots=(Shot("settings-logo"),)),),
        (("/settings/company/logo", "settings.logo"),),
    ),
    Article(
        "follow-snippet",
        (Section("how", 2), Section("setup", 2, shots=(Shot("settings-follow"),))),
        (("/settings/follow-snippet", "nav.follow_snippet"),),
    ),
    Article(
        "intake-form",
        (
            Section("embed", 3, shots=(Shot("settings-intake"),)),
            Section("confirm", 3, shots=(Shot("intake-form-phone", phone=True),)),
            Section("cancel", 1),
            Section("rotate", 2),
        ),
        (("/settings/intake", "intake.settings.title"),),
    ),
    Article(
        "team",
        (Section("users", 2), Section("fields", 1)),
        (("/settings/users", "nav.users"), ("/settings/fields", "nav.fields")),
    ),
)
BY_SLUG: dict[str, Article] = {article.slug: article for article in ARTICLES}

# About and System Policy: written like articles (keys ``help.about.…``,
# ``help.policy.…``) but served at /about and /policy, outside the search.
PAGES: dict[str, Article] = {
    "about": Article(
        "about",
        (Section("what", 2), Section("free", 1), Section("how", 2), Section("help", 1)),
    ),
    "policy": Article(
        "policy",
        (
            Section("terms", 4),
            Section("stored", 1, items=7),
            Section("cookies", 1, items=4, after=1),
            Section("retention", 1, items=9, after=1),
            Section("access", 0, items=6),
            Section("data", 4),
            Section("where", 1),
        ),
        (("/settings/data", "help.policy.data.place"),),
    ),
}


def figures(extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """Every number the help, About and Policy pages quote, read from where the code keeps it.

    ``extra`` carries the few figures defined in the web layer (a service never
    imports upward), e.g. the intake iframe's minimum size.
    """
    settings = get_settings()
    ip_hour = next(r.limit for r in intake.RATE_LIMITS if (r.scope, r.window) == ("ip", "hour"))
    found: dict[str, object] = {
        "quota": settings.free_plan_monthly_orders,
        "inactivity_days": settings.inactivity_days,
        "warning_days": settings.inactivity_warning_days,
        "session_hours": settings.session_ttl_hours,
        "idle_minutes": settings.session_idle_minutes,
        "base_url": settings.base_url,
        "max_fields": custom_fields.MAX_FIELDS,
        "max_invites": users.MAX_PENDING_INVITATIONS,
        "user_invite_days": users.INVITE_LIFETIME.days,
        "code_minutes": int(email_codes.CODE_LIFETIME.total_seconds() // 60),
        "code_tries": email_codes.CODE_MAX_TRIES,
        "reset_hours": int(password_reset.RESET_LIFETIME.total_seconds() // 3600),
        "red_days": aging.RED_DAYS,
        "orange_days": aging.ORANGE_DAYS,
        "orange_last_day": aging.RED_DAYS - 1,
        "weeks": dashboard.WEEKS,
        "top": dashboard.TOP,
        "logo_mb": logos.MAX_UPLOAD_BYTES // (1024 * 1024),
        "logo_mpx": logos.MAX_PIXELS // 1_000_000,
        "logo_side": logos.MAX_SIDE,
        "link_days_open": customers.LINK_DAYS_OPEN,
        "link_days_after_close": customers.LINK_DAYS_AFTER_CLOSE,
        "rating_days": customers.RATING_CHANGE_DAYS,
        "max_comment": customers.MAX_COMMENT,
        "follow_minutes": int(customers.FOLLOW_WINDOW.total_seconds() // 60),
        "follow_ip": customers.FOLLOW_LIMIT_IP,
        "follow_order": customers.FOLLOW_LIMIT_ORDER,
        "follow_width_min": customers.WIDTH_RANGE[0],
        "follow_width_max": customers.WIDTH_RANGE[1],
        "follow_height_min": customers.HEIGHT_RANGE[0],
        "follow_height_max": customers.HEIGHT_RANGE[1],
        "partner_invite_days": partners.INVITE_LIFETIME.days,
        "directory_prefix": DIRECTORY_PREFIX,
        "intake_hours": int(intake.PENDING_LIFETIME.total_seconds() // 3600),
        "resend_minutes": int(intake.RESEND_INTERVAL.total_seconds() // 60),
        "min_seconds": intake.MIN_SECONDS_TO_SUBMIT,
        "max_origins": intake.MAX_ORIGINS,
        "ip_hour": ip_hour,
        "in_request_rows": export.IN_REQUEST_ROWS,
        "url_minutes": export.URL_SECONDS // 60,
        "export_days": export.JOB_DAYS,
    }
    found.update(extra or {})
    return found


# -- rendering -----------------------------------------------------------------


@dataclass(frozen=True)
class ShownShot:
    src: str
    caption: str
    phone: bool


@dataclass(frozen=True)
class ShownSection:
    anchor: str
    heading: str
    paragraphs: tuple[str, ...]
    items: tuple[str, ...]
    after: tuple[str, ...]
    shots: tuple[ShownShot, ...]


@dataclass(frozen=True)
class ShownArticle:
    slug: str
    title: str
    summary: str
    sections: tuple[ShownSection, ...]
    places: tuple[tuple[str, str], ...]


def shot_available(name: str) -> bool:
    return SHOT_NAME.match(name) is not None and (SHOTS_DIR / name).is_file()


def read_shot(name: str) -> bytes | None:
    """A screenshot's bytes, or None (unknown name, or the suite has not taken it yet)."""
    if not shot_available(name):
        return None
    return (SHOTS_DIR / name).read_bytes()


def _texts(locale: str, prefix: str, count: int, numbers: Mapping[str, object]) -> tuple[str, ...]:
    return tuple(translate(locale, f"{prefix}{n}", **numbers) for n in range(1, count + 1))


def render_article(slug: str, locale: str, numbers: Mapping[str, object]) -> ShownArticle | None:
    """One article in ``locale`` with its figures filled in; None for an unknown slug."""
    article = BY_SLUG.get(slug)
    return None if article is None else _render(article, locale, numbers)


def render_page(name: str, locale: str, numbers: Mapping[str, object]) -> ShownArticle:
    """The About or the System Policy page."""
    return _render(PAGES[name], locale, numbers)


def _render(article: Article, locale: str, numbers: Mapping[str, object]) -> ShownArticle:
    slug = article.slug
    base = f"help.{slug}"
    sections = []
    for section in article.sections:
        key = f"{base}.{section.key}"
        shots = tuple(
            ShownShot(
                src=f"/help/img/{shot.file}",
                caption=translate(locale, f"{key}.shot.{shot.name}", **numbers),
                phone=shot.phone,
            )
            for shot in section.shots
            # A fresh clone has no screenshots yet: the article simply shows none.
            if shot_available(shot.file)
        )
        sections.append(
            ShownSection(
                anchor=section.key,
                heading=translate(locale, f"{key}.h", **numbers),
                paragraphs=_texts(locale, f"{key}.p", section.paragraphs, numbers),
                items=_texts(locale, f"{key}.li", section.items, numbers),
                after=_texts(locale, f"{key}.q", section.after, numbers),
                shots=shots,
            )
        )
    return ShownArticle(
        slug=slug,
        title=translate(locale, f"{base}.title", **numbers),
        summary=translate(locale, f"{base}.summary", **numbers),
        sections=tuple(sections),
        places=tuple((path, translate(locale, label)) for path, label in article.places),
    )


def catalogue_keys(article: Article) -> list[str]:
    """Every catalogue key the article uses (the catalogue test proves each exists)."""
    base = f"help.{article.slug}"
    found = [f"{base}.title", f"{base}.summary"]
    for section in article.sections:
        key = f"{base}.{section.key}"
        found.append(f"{key}.h")
        found += [f"{key}.p{n}" for n in range(1, section.paragraphs + 1)]
        found += [f"{key}.li{n}" for n in range(1, section.items + 1)]
        found += [f"{key}.q{n}" for n in range(1, section.after + 1)]
        found += [f"{key}.shot.{shot.name}" for shot in section.shots]
    found += [label for _, label in article.places]
    return found


def index(locale: str, numbers: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """(slug, title, summary) of every article, in the help center's order."""
    return [
        (
            a.slug,
            translate(locale, f"help.{a.slug}.title"),
            translate(locale, f"help.{a.slug}.summary", **numbers),
        )
        for a in ARTICLES
    ]


# -- search ----------------------------------------------------------------------

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Hit:
    slug: str
    title: str
    anchor: str | None  # the section the best passage is in
    # The passage cut around the first match, as (text, matched) pieces the template escapes.
    passage: tuple[tuple[str, bool], ...]
    score: int


def query_words(query: str) -> list[str]:
    words = _WORD.findall(fold(query))
    # Words of one or two letters ("de", "to", "o") match nearly everything;
    # they count only when they are all the visitor typed.
    long_words = [word for word in words if len(word) > 2]
    return list(dict.fromkeys(long_words or words))[:MAX_QUERY_WORDS]


def _matches(text: str, words: list[str]) -> set[str]:
    tokens = _WORD.findall(fold(text))
    return {word for word in words if any(token.startswith(word) for token in tokens)}


def _passage(text: str, words: list[str]) -> tuple[tuple[str, bool], ...]:
    """Up to SNIPPET_CHARS of ``text`` around its first match, matched word starts marked."""
    folded = fold(text)
    # fold() keeps one character per character for the scripts we serve (it drops
    # combining accents only), so positions in ``folded`` index ``text`` too.
    if len(folded) != len(text):
        return ((text[:SNIPPET_CHARS], False),)
    spans = []
    for match in _WORD.finditer(folded):
        for word in words:
            if match.group().startswith(word):
                spans.append((match.start(), match.start() + len(word)))
                break
    start = 0
    if spans and spans[0][0] > SNIPPET_CHARS // 2:
        start = text.rfind(" ", 0, spans[0][0] - SNIPPET_CHARS // 3) + 1
    end = min(len(text), start + SNIPPET_CHARS)
    if end < len(text):
        end = max(text.rfind(" ", start, end), start + 1)
    pieces: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    position = start
    for low, high in spans:
        if low < position or high > end:
            continue
        pieces += [(text[position:low], False), (text[low:high], True)]
        position = high
    pieces.append((text[position:end], False))
    if end < len(text):
        pieces.append(("…", False))
    return tuple(piece for piece in pieces if piece[0])


def search(query: str, locale: str, numbers: Mapping[str, object]) -> list[Hit]:
    """Articles in ``locale`` matching the query's words (start of a word, any accents).

    Articles holding every word come first, and alone when there are any;
    otherwise those holding most of them. Then where they matched counts (title
    over summary over headings over text). Twelve short articles: scanning
    them per request costs a few milliseconds and no request at all.
    """
    words = query_words(query)
    if not words:
        return []
    hits = []
    for article in ARTICLES:
        shown = _render(article, locale, numbers)
        weighted: list[tuple[str, int, str | None]] = [
            (shown.title, 8, None),
            (shown.summary, 4, None),
        ]
        for section in shown.sections:
            weighted.append((section.heading, 3, section.anchor))
            weighted += [
                (text, 1, section.anchor)
                for text in (*section.paragraphs, *section.items, *section.after)
            ]
        matched: set[str] = set()
        score = 0
        best: tuple[int, str, str | None] | None = None
        for text, weight, anchor in weighted:
            found = _matches(text, words)
            if not found:
                continue
            matched |= found
            score += weight * len(found)
            # The passage shown is a sentence (text or summary), not a heading.
            if weight in (1, 4) and (best is None or len(found) > best[0]):
                best = (len(found), text, anchor)
        if not matched:
            continue
        text, anchor = (best[1], best[2]) if best else (shown.summary, None)
        hits.append(
            Hit(
                slug=article.slug,
                title=shown.title,
                anchor=anchor,
                passage=_passage(text, words),
                score=len(matched) * 1000 + score,
            )
        )
    complete = [hit for hit in hits if hit.score >= len(words) * 1000]
    return sorted(complete or hits, key=lambda hit: -hit.score)
