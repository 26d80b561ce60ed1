"""Deleting a company: confirm, mark, then erase every item and file of it in resumable batches.

Order of work, each step found through the company's own keys (never a table-wide read):

1. **Mark** (one TransactWriteItems): Company ``status = deleting`` (out of
   the activity index), the ``ERASE#`` job item in the ``ERASING`` index,
   and at once the public handles: Slug, form code, directory cards. From
   that moment sessions are refused (``sessions.authenticate``), the public
   page and the intake form answer 404.
2. **Run** (a background Lambda, resumed by the ``erasure_sweep`` schedule):
   partnerships (the partner's side is disabled, ours deleted), users
   (notifications, throttles, Login, User), invitations, orders (own
   orders erased; orders shared with a partner keep the partner's copy
   without our customers' personal data; orders we execute for a partner
   are handed back to it), intake requests and locks, rate counters,
   every remaining ``CO#<id>`` item, the S3 objects under ``logos/<id>/``
   and ``exports/<id>/``, and last the Company and the job item together.

Every step deletes what it finds and finds only what is left, so a run cut
short (crash, timeout) is finished by the next one. The steps live in
``erasure_steps`` (the Eraser and all but orders) and ``erasure_orders``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.db.accounts import DELETING, Company, Slug
from chalicelib.db.base import Item, conflicted, failed_keys, transaction
from chalicelib.db.data_rights import ERASING, ErasureJob
from chalicelib.db.intake import FormKey
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.validation import fold
from chalicelib.services import data_rights_lambda, directory, erasure_steps, signin
from chalicelib.services.erasure_orders import erase_orders
from chalicelib.services.erasure_steps import Eraser, OutOfTime
from chalicelib.services.sessions import Principal, now

log = logging.getLogger("checkos.erasure")

# A Lambda runs at most 15 minutes: a heartbeat older than this means the run died.
STALE_AFTER = timedelta(minutes=20)
# Stop a run with this much Lambda time left; the sweep resumes it.
RESERVE_SECONDS = 60.0
_runs = data_rights_lambda.Background()


# -- confirming and marking ------------------------------------------------------------


def confirmation_matches(company: Company, typed: str) -> bool:
    """The typed confirmation is the company's name (case, accents and spacing aside)."""
    return bool(typed.strip()) and fold(" ".join(typed.split())) == fold(
        " ".join(company.name.split())
    )


def check_request(principal: Principal, form: Mapping[str, str]) -> None:
    """The admin re-entered their password and typed the company's name."""
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    if not confirmation_matches(principal.company, form.get("confirmation", "")):
        errors["confirmation"] = ("erase.confirm_mismatch", {})
    password = form.get("password", "")
    if not signin.password_matches(principal.user.email, principal.user_id, password):
        errors["password"] = ("erase.wrong_password", {})
    if errors:
        raise ValidationFailed(errors)


def request_erasure(principal: Principal, form: Mapping[str, str]) -> None:
    """Check the confirmation, mark the company as being deleted, start the erasure."""
    check_request(principal, form)
    mark(principal.company, principal.user_id)
    _start_background(principal.company_id)


# A concurrent write to the Company (a settings save, a logo, a reactivation)
# makes the marking read it again and retry: the deletion always wins.
MARK_ATTEMPTS = 10


def mark(company: Company, user_id: str) -> None:
    """One transaction: status ``deleting``, the job item, and the public handles gone.

    The Company update is conditioned on the version read and bumps it, like
    any versioned save: a settings form read before the deletion then fails
    its own version condition instead of writing ``status = active`` back,
    and the directory cards and handles removed are exactly the stored ones.
    (An update without the version condition would reset a shell's version
    to 1, which an old form could match again.)
    """
    company_id = company.company_id
    for attempt in range(MARK_ATTEMPTS):
        if attempt:
            try:
                company = Company.get(*Company.key(company_id), consistent_read=True)
            except DoesNotExist:
                return
        if company.status == DELETING:
            log.info("company already being deleted", extra={"company": company_id})
            return
        if _try_mark(company, user_id):
            return
    raise Conflict("erase.busy")


def _try_mark(company: Company, user_id: str) -> bool:
    """False when the Company changed since it was read (read it again and retry)."""
    company_id = company.company_id
    at = now()
    index = ErasureJob.index_fields(company_id, at.isoformat())
    job = ErasureJob(
        *ErasureJob.key(company_id),
        company_id=company_id,
        requested_at=at,
        requested_by=user_id,
        updated_at=at,
        gsi1pk=index["gsi1pk"],
        gsi1sk=index["gsi1sk"],
    )
    tx = transaction()
    try:
        with tx:
            tx.update(
                company,
                actions=[
                    Company.status.set(DELETING),
                    Company.gsi3pk.remove(),  # out of the inactivity job's index
                    Company.gsi3sk.remove(),
                ],
                # The version condition is added (and the version bumped) by the model.
                condition=Company.pk.exists() & (Company.status != DELETING),
            )
            tx.save(job, condition=ErasureJob.pk.does_not_exist())
            tx.delete(
                Slug(*Slug.key(company.slug)),
                condition=(Slug.company_id == company_id) | Slug.pk.does_not_exist(),
            )
            if company.intake_code:
                tx.delete(
                    FormKey(*FormKey.key(company.intake_code)),
                    condition=(FormKey.company_id == company_id) | FormKey.pk.does_not_exist(),
                )
            directory.write_changes(tx, company, None)
    except TransactWriteError as error:
        if Company.key(company_id) in failed_keys(error, tx) or conflicted(error):
            return False
        raise
    return True


def run_erasure(
    company_id: str, *, crash_after: int | None = None, deadline: float | None = None
) -> str:
    """Erase (what is left of) a company marked for deletion; safe to run again at any time."""
    try:
        job = ErasureJob.get(*ErasureJob.key(company_id), consistent_read=True)
    except DoesNotExist:
        return "nothing"
    job.update(
        actions=[ErasureJob.runs.add(1), ErasureJob.updated_at.set(now())],
        condition=ErasureJob.pk.exists(),
    )
    try:
        company: Company | None = Company.get(*Company.key(company_id), consistent_read=True)
    except DoesNotExist:
        company = None
    if company is not None and company.status != DELETING:
        raise RuntimeError(f"company {company_id} is not marked for deletion")
    eraser = Eraser(company_id, crash_after=crash_after, deadline=deadline)
    try:
        _erase(eraser, company)
    except OutOfTime:
        eraser.heartbeat()
        log.info("erasure paused", extra={"company": company_id, "stage": eraser.stage})
        return "paused"
    except Exception as problem:
        log.exception("erasure failed", extra={"company": company_id, "stage": eraser.stage})
        _record_failure(company_id, eraser, problem)
        raise
    log.info("erasure done", extra={"company": company_id})
    return "done"


def _record_failure(company_id: str, eraser: Eraser, problem: Exception) -> None:
    try:
        ErasureJob(*ErasureJob.key(company_id)).update(
            actions=[
                ErasureJob.stage.set(eraser.stage),
                ErasureJob.deleted.add(eraser.deleted),
                ErasureJob.last_error.set(f"{type(problem).__name__}: {problem}"[:500]),
            ],
            condition=ErasureJob.pk.exists(),
        )
    except Exception:  # the failure itself is what matters; the sweep retries anyway
        log.exception("could not record the erasure failure", extra={"company": company_id})


def _erase(eraser: Eraser, company: Company | None) -> None:
    steps = (
        ("partnerships", lambda: erasure_steps.erase_partnerships(eraser, company)),
        ("users", lambda: erasure_steps.erase_users(eraser)),
        ("invitations", lambda: erasure_steps.erase_invitations(eraser)),
        ("orders", lambda: erase_orders(eraser, company)),
        ("intake", lambda: erasure_steps.erase_intake(eraser)),
        ("counters", lambda: erasure_steps.erase_rate_counters(eraser)),
        ("company items", lambda: erasure_steps.erase_company_partition(eraser)),
        ("files", lambda: erasure_steps.erase_files(eraser)),
    )
    for stage, step in steps:
        eraser.stage = stage
        step()
    eraser.stage = "company"
    eraser.before_write(2)
    with transaction() as tx:
        # The Company and the job go together and last: until then a re-run finds both.
        tx.delete(Company(*Company.key(eraser.company_id)), add_version_condition=False)
        tx.delete(ErasureJob(*ErasureJob.key(eraser.company_id)))
    eraser.deleted += 2


# -- background runs and the sweep -------------------------------------------------------


def unfinished(limit: int = 50) -> list[ErasureJob]:
    """Deletions still in progress: one Query of the sparse ``ERASING`` index."""
    return [job for job in Item.gsi1.query(ERASING, limit=limit) if isinstance(job, ErasureJob)]


def sweep(*, as_of: datetime | None = None) -> dict[str, int]:
    """Resume every deletion whose last heartbeat is older than a run can last."""
    moment = as_of or now()
    resumed = 0
    for job in unfinished():
        if job.updated_at > moment - STALE_AFTER:
            continue  # a run is (probably) still going
        _start_background(job.company_id)
        resumed += 1
    return {"resumed": resumed}


def handle_event(event: dict[str, Any], context: object = None) -> dict[str, str]:
    """Entry point of the ``data_rights`` Lambda for an erasure."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    deadline = None
    if callable(remaining):
        deadline = time.monotonic() + remaining() / 1000 - RESERVE_SECONDS
    return {"status": run_erasure(str(event["company_id"]), deadline=deadline)}


def _start_background(company_id: str) -> None:
    _runs.start({"job": "erase", "company_id": company_id}, lambda: _run_quietly(company_id))


def _run_quietly(company_id: str) -> None:
    try:
        run_erasure(company_id)
    except Exception:  # logged by run_erasure; the sweep resumes it
        return


def join_background(timeout: float = 60.0) -> None:
    """Wait for background runs started by this process (tests, local shutdown)."""
    _runs.join(timeout)
