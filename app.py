"""CheckOS Chalice app: creates the app, registers blueprints and scheduled functions."""

from typing import TYPE_CHECKING

from chalice import Chalice, Cron
from chalice.app import CloudWatchEvent

from chalicelib import logs
from chalicelib.assets import BINARY_TYPES
from chalicelib.config import get_settings
from chalicelib.lazy import lazy_module
from chalicelib.web import (
    accounts,
    company,
    customers,
    dashboard,
    data_rights,
    devjobs,
    help,
    http,
    intake,
    orders,
    outbox,
    pages,
    partners,
    security,
    users,
)
from chalicelib.wiring import wire

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import jobs
else:
    jobs = lazy_module("chalicelib.services.jobs")

# A deployed function without its stage or signing secret refuses to start (config.py).
get_settings()
# What reacts to an order's changes (customer e-mail...): services/order_events.py.
wire()

app = Chalice(app_name="checkos")
app.api.binary_types.append("multipart/form-data")
app.api.binary_types.extend(company.BINARY_TYPES)
app.api.binary_types.extend(BINARY_TYPES)
# JSON log lines with the request id and company id (chalicelib/logs.py).
logs.install(app)

# First, so everything after it (pages, redirects, error pages) knows the site's prefix.
app.register_middleware(http.under_site_prefix, "http")
app.register_blueprint(security.bp)
app.register_blueprint(accounts.bp)
app.register_blueprint(outbox.bp)
app.register_blueprint(users.bp)
app.register_blueprint(company.bp)
app.register_blueprint(orders.bp)
app.register_blueprint(dashboard.bp)
app.register_blueprint(customers.bp)
app.register_blueprint(devjobs.bp)
app.register_blueprint(partners.bp)
app.register_blueprint(intake.bp)
app.register_blueprint(help.bp)
app.register_blueprint(data_rights.bp)
app.register_blueprint(pages.bp)  # last: its /{proxy+} answers the 404 page


@app.lambda_function(name="export_orders")
def export_orders(event: dict, context: object) -> dict:
    """Large XLSX exports, invoked asynchronously by POST /exports (services/export.py)."""
    from chalicelib.services.export import handle_event

    return handle_event(event)


@app.schedule(Cron(0, 3, "*", "*", "?", "*"), name="nightly_inactivity")
def nightly_inactivity(event: CloudWatchEvent) -> dict:
    """03:00 UTC: warn idle companies, set inactive those idle too long (services/jobs.py)."""
    return jobs.run_inactivity(jobs.today()).as_dict()


@app.schedule(Cron(0, 6, "*", "*", "?", "*"), name="daily_aging")
def daily_aging(event: CloudWatchEvent) -> dict:
    """06:00 UTC: "needs attention" notifications for aging open orders (services/jobs.py)."""
    return jobs.run_aging(jobs.today()).as_dict()


@app.lambda_function(name="data_rights")
def data_rights_job(event: dict, context: object) -> dict:
    """Data archives and company deletions, run in the background (services/takeout, erasure)."""
    if event.get("job") == "archive":
        from chalicelib.services.takeout import handle_event as archive

        return archive(event)
    from chalicelib.services.erasure import handle_event as erase

    return erase(event, context)


@app.schedule(Cron("0/15", "*", "*", "*", "?", "*"), name="erasure_sweep")
def erasure_sweep(event: CloudWatchEvent) -> dict:
    """Every 15 minutes: resume deletions a crash or a timeout cut short (services/erasure.py)."""
    from chalicelib.services.erasure import sweep

    return sweep()


@app.lambda_function(name="mail_events")
def mail_events(event: dict, context: object) -> dict:
    """SES bounces and complaints via SNS (infra MailEventsTopic): the suppression list."""
    from chalicelib.services.delivery import handle_sns_event

    return handle_sns_event(event)
