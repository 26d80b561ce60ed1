"""Local scheduled-jobs page: run the nightly and daily jobs by hand and see their summary.

`chalice local` runs no schedules. Like the outbox, the page exists only in
the local and test stages with OUTBOX_ENABLED set; every deployed stage
answers 404, whatever else is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.config import get_settings
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.lazy import lazy_module
from chalicelib.web.context import PUBLIC, Ctx, route

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import jobs
else:
    jobs = lazy_module("chalicelib.services.jobs")

bp = Blueprint(__name__)
PAGE = "pages/dev_jobs.html"


def _require_enabled() -> None:
    settings = get_settings()
    # The stage decides first: a deployed stage has no outbox whatever else is set.
    if not (settings.is_local and settings.outbox_enabled):
        raise NotFound()


@route(bp, "/dev/jobs", methods=("GET", "POST"), auth=PUBLIC)
def dev_jobs(ctx: Ctx) -> Response:
    _require_enabled()
    if ctx.method == "GET":
        return ctx.render(PAGE, summary=None, values={}, errors={}, cursors=jobs.cursors())
    try:
        summary = jobs.run_named(ctx.form.get("job", ""), ctx.form.get("as_of", ""))
    except ValidationFailed as problem:
        return ctx.form_error_page(PAGE, problem, summary=None, cursors=jobs.cursors())
    return ctx.render(PAGE, summary=summary, values={}, errors={}, cursors=jobs.cursors())
