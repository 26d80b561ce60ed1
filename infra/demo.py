"""`make run DEMO=1`: a demo company with users and realistic orders of every age.

Everything goes through the real services (so counters, list entries and
history are consistent); registration dates are spread over the last weeks
by travelling in time while seeding.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import time_machine

from chalicelib.db.accounts import Company, Login, User
from chalicelib.db.base import transaction
from chalicelib.domain.passwords import hash_password
from chalicelib.services import directory, orders, signup

DEMO_EMAIL = "demo@checkos.example"
DEMO_PASSWORD = "demo password 123"  # noqa: S105 - a public demo account on a local run
CUSTOMERS = [
    ("Maria José da Silva", "+55 11 91234-5678", "maria@example.com"),
    ("Carlos Pérez", "+34 600 123 456", "carlos@example.com"),
    ("Ana Lúcia Prado", "(21) 98888-7777", ""),
    ("John Carter", "+1 415 555 0100", "john@example.com"),
    ("Lucía Fernández", "+54 11 5555-0101", "lucia@example.com"),
    ("Paulo Henrique", "(31) 97777-1212", ""),
    ("Sofia Rossi", "+39 333 123 4567", "sofia@example.com"),
    ("Rafael Gómez", "+52 55 1234 5678", ""),
]
JOBS = [
    ("Screen replacement", "Samsung", "Galaxy A54", "Cracked screen after a fall"),
    ("Battery replacement", "Apple", "iPhone 12", "Battery drains in two hours"),
    ("Boiler service", "Vaillant", "ecoTEC plus", "No hot water in the morning"),
    ("Laptop repair", "Dell", "Latitude 5420", "Does not power on"),
    ("Washing machine", "Bosch", "Serie 6", "Leaks water during spin"),
    ("Printer repair", "HP", "LaserJet M404", "Paper jam error"),
    ("Screen replacement", "Apple", "iPad Air", "Touch does not respond"),
    ("Air conditioning", "LG", "DualCool", "Not cooling"),
]


def seed_demo(seed: int = 11) -> str:
    """Create the demo company; returns a line telling how to sign in."""
    rng = random.Random(seed)
    account = signup.sign_up(
        {
            "company_name": "Oficina Demo Consertos",
            "business_type": "Electronics and appliance repair",
            "area": "São Paulo and region",
            "contact_name": "Ana Souza",
            "phone": "+55 11 3333-4444",
            "email": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
        },
        "en",
    )
    company = account.company
    company.update(
        actions=[
            Company.email_validated.set(True),
            Company.city.set("São Paulo"),
            Company.state.set("SP"),
            Company.country.set("Brazil"),
            Company.website.set("https://example.com"),
            Company.description.set("Repairs of phones, computers and home appliances since 2009."),
        ]
    )
    technician = User(
        *User.key(company.company_id, "demo-tech"),
        user_id="demo-tech",
        company_id=company.company_id,
        email="tech@checkos.example",
        name="Bruno Lima",
        role="staff",
        created_at=datetime.now(UTC),
    )
    technician.save()
    # Every user signs in through a Login item (the invariant checker insists).
    Login(
        *Login.key(technician.email),
        user_id="demo-tech",
        company_id=company.company_id,
        password_hash=hash_password(DEMO_PASSWORD),
    ).save()
    # The directory cards carry a copy of the city set above.
    company.refresh()
    with transaction() as tx:
        directory.write_changes(tx, None, company)
    team = {account.user.user_id: account.user.name, "demo-tech": technician.name}
    boss = orders.Actor(name=account.user.name, user_id=account.user.user_id)
    tech = orders.Actor(name=technician.name, user_id="demo-tech")
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    # Oldest first, so order numbers grow with the registration date.
    ages = sorted(
        (rng.choice([0, 1, 2, 3, 5, 8, 12, 16, 21, 25, 33, 40]) for _ in range(24)), reverse=True
    )
    for index, days_ago in enumerate(ages):
        name, phone, email = CUSTOMERS[index % len(CUSTOMERS)]
        service, brand, model, problem = JOBS[(index * 3) % len(JOBS)]
        service_in = rng.choice([None, -3, -1, 0, 1, 2, 5])
        form = {
            "customer_name": name,
            "customer_phone": phone,
            "customer_email": email,
            "service_type": service,
            "brand": brand,
            "model": model,
            "problem": problem,
            "priority": rng.choice(["normal", "normal", "high", "urgent", "low"]),
            "technician_id": rng.choice(["", "demo-tech", account.user.user_id]),
            "estimated_value": str(rng.choice([80, 120, 150, 240, 390])),
        }
        if service_in is not None:
            form["service_date"] = (today + timedelta(days=service_in)).date().isoformat()
        moment = today - timedelta(days=days_ago, minutes=24 - index)
        with time_machine.travel(moment, tick=True):
            order = orders.register_order(company, boss, form, team)
            steps = rng.choice([[], ["start"], ["start", "complete"], ["schedule"], ["cancel"]])
            for action in steps:
                note = "Customer gave up the repair" if action == "cancel" else ""
                orders.change_status(company.company_id, order.order_id, tech, action, note=note)
            if rng.random() < 0.4:
                orders.post_message(
                    company.company_id, order.order_id, tech, "Parts ordered, arriving Thursday."
                )
    return f"Demo company ready: sign in at /login with {DEMO_EMAIL} / {DEMO_PASSWORD}"
