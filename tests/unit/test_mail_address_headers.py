"""Address headers are built, not re-parsed: every display name parses back exactly.

Property: for a name made of characters from every Unicode category plus every
RFC 5322 special, From, Reply-To and To read back (with the standard library
AND with fast-mail-parser, a Rust parser sharing no code with it) as exactly
one address, the intended one, under exactly the intended display name; and
that name never carries address syntax (`<`, `>`, `@`).
"""

from __future__ import annotations

import email
from email.policy import default

import fast_mail_parser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.aws import mail

SENDER = "no-reply@checkos.example"
SPECIALS = [*'"();<>@,:\\.[]', "=?", "?=", "\r\n", "\r", "\n", "\t", " ", "  "]
CATEGORIES = [
    "Lu",
    "Ll",
    "Lt",
    "Lm",
    "Lo",
    "Mn",
    "Mc",
    "Me",
    "Nd",
    "Nl",
    "No",
    "Pc",
    "Pd",
    "Ps",
    "Pe",
    "Pi",
    "Pf",
    "Po",
    "Sm",
    "Sc",
    "Sk",
    "So",
    "Zs",
    "Zl",
    "Zp",
    "Cc",
    "Cf",
    "Cs",
    "Co",
    "Cn",
]
pieces = st.one_of(
    st.sampled_from(SPECIALS),
    st.text(st.characters(categories=CATEGORIES), min_size=1, max_size=6),
    st.sampled_from(["Zé", "Itaú", "Conceição", "Refrigeração", "Müller", "北京", "Ωμέγα"]),
)
names = st.lists(pieces, min_size=0, max_size=14).map("".join)
RECIPIENT = "cliente@exemplo-ção.com.br"
REPLY = "oficina@exemplo.com.br"


def parsed_with_stdlib(raw: bytes) -> dict[str, list[tuple[str, str]]]:
    message = email.message_from_bytes(raw, policy=default)
    return {
        h: [(a.display_name, a.addr_spec) for a in message[h].addresses]
        for h in ("From", "To", "Reply-To")
    }


def parsed_with_fast_mail_parser(raw: bytes) -> dict[str, list[tuple[str, str]]]:
    message = fast_mail_parser.parse_email(raw)
    found = {"From": [message.from_], "To": list(message.to), "Reply-To": list(message.reply_to)}
    return {h: [(a.display_name or "", a.address) for a in found[h] if a] for h in found}


def expected(name: str) -> dict[str, list[tuple[str, str]]]:
    shown = mail.display_name(name)
    return {
        "From": [(shown or "CheckOS", SENDER)],
        "To": [(shown, "cliente@xn--exemplo-o-s2a7b.com.br")],
        "Reply-To": [(shown, REPLY)],
    }


def message_for(name: str) -> bytes:
    return mail.build_message(
        mail.Mail(
            to=RECIPIENT,
            to_name=name,
            subject="s",
            text="t",
            html="<p>h</p>",
            reply_to=REPLY,
            reply_to_name=name,
            from_name=name,
        ),
        SENDER,
    ).as_bytes()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names)
def test_every_display_name_parses_back_exactly_with_two_parsers(name: str) -> None:
    raw = message_for(name)
    want = expected(name)
    assert parsed_with_stdlib(raw) == want
    assert parsed_with_fast_mail_parser(raw) == want
    assert not set("<>@") & set(mail.display_name(name))


REVIEW_NAMES = {
    'Oficina "Do Zé"': 'Oficina "Do Zé"',
    "Refrigeração Polo Norte; Filial 2": "Refrigeração Polo Norte; Filial 2",
    "Banco Itaú <seguranca@itau.com.br>": "Banco Itaú ‹seguranca at itau.com.br›",
    "Banco Seguro <seguranca@banco.example>": "Banco Seguro ‹seguranca at banco.example›",
    "Oficina (Centro) \\ Zé": "Oficina (Centro) \\ Zé",
}


def test_the_names_from_the_review_keep_one_sender_and_show_no_address() -> None:
    for name, shown in REVIEW_NAMES.items():
        raw = message_for(name)
        assert mail.display_name(name) == shown
        assert parsed_with_stdlib(raw) == expected(name), name
        assert parsed_with_fast_mail_parser(raw) == expected(name), name


def test_subject_keeps_the_space_between_encoded_words() -> None:
    subjects = [
        "Conceição Araújo",
        "Pedido #1234 de Refrigeração Conceição Araújo — atualização do status São Paulo",
        "Orden #77 · Conceição Araújo Müller 北京 Ωμέγα está en camino, señora Núñez",
    ]
    # Every place a fold can fall, including exactly on the space between two
    # encoded words (where CPython 3.11's folder drops it: "ConceiçãoAraújo").
    subjects += [f"Pedido {'á' * n} Conceição Araújo"[:150] for n in range(1, 130)]
    subjects += [f"Nova ordem nº {n}: {'José ' * (n % 9)}Conceição Araújo" for n in range(60)]
    for subject in subjects:
        raw = mail.build_message(
            mail.Mail(to="a@example.com", subject=subject, text="t", html="h"), SENDER
        ).as_bytes()
        assert str(email.message_from_bytes(raw, policy=default)["Subject"]) == subject
        assert fast_mail_parser.parse_email(raw).subject == subject


def test_every_message_has_date_message_id_language_and_7bit_text_parts() -> None:
    raw = mail.build_message(
        mail.Mail(
            to="a@example.com",
            subject="Código",
            text="Su código es 123456. Válido por 15 minutos, señor Núñez.",
            html="<p>Su código es 123456.</p>",
            language="es",
        ),
        SENDER,
    ).as_bytes()
    message = email.message_from_bytes(raw, policy=default)
    assert message["Date"] and message["Message-ID"].endswith("@checkos.example>")
    assert message["Content-Language"] == "es"
    assert message["Auto-Submitted"] == "auto-generated"
    cte = {p.get_content_type(): p["Content-Transfer-Encoding"] for p in message.iter_parts()}
    assert set(cte.values()) <= {"quoted-printable", "base64"}, cte
    assert max(raw) < 128  # 7-bit on the wire
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "señor Núñez" in text


def test_one_address_rule_idn_domains_accepted_non_ascii_local_parts_refused() -> None:
    from chalicelib.domain.validation import Checker, shown_email, wire_email
    from chalicelib.i18n import translate

    check = Checker({"a": "Cliente@Exemplo-Ção.com.br", "b": "josé@exemplo.com.br", "c": "x@"})
    assert check.email("a") == "cliente@exemplo-ção.com.br"  # stored and shown in Unicode
    check.email("b")
    check.email("c")
    assert check.errors["b"][0] == "form.email_local_ascii"
    assert check.errors["c"][0] == "form.invalid_email"
    assert "@" in translate("es", "form.email_local_ascii")
    assert wire_email("cliente@exemplo-ção.com.br") == "cliente@xn--exemplo-o-s2a7b.com.br"
    assert shown_email("cliente@xn--exemplo-o-s2a7b.com.br") == "cliente@exemplo-ção.com.br"


def test_an_idn_recipient_travels_as_punycode_not_an_encoded_word() -> None:
    raw = message_for("Zé").decode("ascii")
    assert "To: =?utf-8?b?WsOp?=\r\n <cliente@xn--exemplo-o-s2a7b.com.br>" in raw
