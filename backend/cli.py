"""The `hulei` command."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Hulei (护蕾) service commands.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit log commands.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    from backend.core.migrate import upgrade

    upgrade()
    typer.echo("database is at the newest migration")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    reload: bool = False,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    from backend.core.config import get_settings

    # X-Forwarded-For is believed from HULEI_FORWARDED_ALLOW_IPS only (infra/README.md, "Behind a proxy").
    uvicorn.run("backend.main:create_app", factory=True, host=host, port=port, workers=workers, reload=reload,
                proxy_headers=True, forwarded_allow_ips=get_settings().forwarded_allow_ips)


@app.command()
def worker(once: Annotated[bool, typer.Option(help="Run every due job once and exit")] = False) -> None:
    """Run background jobs (housekeeping and each domain's scheduled work)."""
    from backend.audit.checkpoints import CheckpointError, require_signing_key
    from backend.core.config import get_settings
    from backend.core.jobs import run_worker
    from backend.core.secrets import InsecureConfiguration, check_production
    from backend.registries import load_all

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        check_production(get_settings())  # production: no weak secrets (backend/core/secrets.py)
    except InsecureConfiguration as exc:
        typer.echo(f"refusing to start the worker: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    try:
        require_signing_key(get_settings())  # production: no worker without the audit checkpoint key
    except (CheckpointError, OSError, ValueError) as exc:
        typer.echo(f"refusing to start the worker: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    load_all()
    from backend.notifications.sms import SmsConfigError

    try:
        run_worker(once=once)  # checks the SMS settings first: a texted sentence with a number in it
    except SmsConfigError as exc:
        typer.echo(f"refusing to start the worker: {exc}", err=True)
        raise typer.Exit(code=1) from exc


@app.command("plan-week")
def plan_week(
    unit: Annotated[str, typer.Option(help="Code of the jurisdiction (town or county) to plan")],
    week: Annotated[str | None, typer.Option(help="Monday of the week, YYYY-MM-DD (default: next week)")] = None,
    publish: Annotated[bool, typer.Option(help="Publish at once (notifies the officers)")] = False,
) -> None:
    """Generate the weekly joint-enforcement plan of a jurisdiction and print the checker's verdict."""
    from datetime import date

    from sqlalchemy import select

    from backend.core.db import session_scope
    from backend.orgunits.models import OrgUnit
    from backend.registries import load_all
    from backend.schedules import service as schedules

    load_all()
    with session_scope() as session:
        found = session.execute(select(OrgUnit).where(OrgUnit.code == unit)).scalar_one_or_none()  # type: ignore[arg-type]
        if found is None or found.id is None:
            typer.echo(f"no unit with code {unit}", err=True)
            raise typer.Exit(code=1)
        plan = schedules.generate(session, None, found.id, date.fromisoformat(week) if week else None)
        if publish:
            schedules.publish_unattended(session, plan)
        session.commit()
        teams = schedules.plan_teams(session, plan)
    visits = sum(len(t.visits) for t in teams)
    typer.echo(f"plan {plan.id} for {found.name}, week of {plan.week_start_date}: {len(teams)} team-days, "
               f"{visits} venues, {plan.total_distance_m / 1000:.1f} km, status {plan.status}")
    if plan.violations:
        for v in plan.violations:
            typer.echo(f"violation {v['code']}: {v['message_en']}")
    else:
        typer.echo("violations: none")


@app.command("seed-demo")
def seed_demo(force: Annotated[bool, typer.Option(help="Seed even if data exists")] = False) -> None:
    """Build the synthetic demo town (only into an empty database unless --force)."""
    from backend.core.db import session_scope
    from backend.demo.town import database_is_empty
    from backend.demo.town import seed_demo as build
    from backend.registries import load_all

    load_all()
    with session_scope() as session:
        if not database_is_empty(session) and not force:
            typer.echo("database already has data; demo town not seeded")
            return
        build(session)
        session.commit()
    typer.echo("demo town seeded")


@app.command("import-boundaries")
def import_boundaries(file: Path) -> None:
    """Import org units and boundaries from a GeoJSON FeatureCollection (all or nothing)."""
    from backend.core.db import session_scope
    from backend.orgunits.service import import_boundaries as run_import
    from backend.registries import load_all

    load_all()
    with session_scope() as session:
        report = run_import(session, file)
        if not report.ok:
            session.rollback()
            for err in report.errors:
                where = f"feature {err['index']}" if err["index"] is not None else "file"
                typer.echo(f"{where}: {err['reason']}", err=True)
            typer.echo("nothing was imported", err=True)
            raise typer.Exit(code=1)
        session.commit()
    typer.echo(f"imported: {report.created} created, {report.updated} updated")


@app.command("export-spec")
def export_spec(
    output: Annotated[Path, typer.Option(help="Where to write the OpenAPI document")] = Path(
        "mobile_api_spec/openapi.json"
    ),
) -> None:
    """Write the OpenAPI document the phones are built against, and the problem-code catalogue
    (problems.md) beside it."""
    from backend.spec import render_openapi, render_problem_catalogue

    output.write_text(render_openapi(), encoding="utf-8")
    problems = output.with_name("problems.md")
    problems.write_text(render_problem_catalogue(), encoding="utf-8")
    typer.echo(f"wrote {output} and {problems}")


@app.command("reseal-id-numbers")
def reseal_id_numbers(batch: Annotated[int, typer.Option(help="Rows per table per transaction")] = 500) -> None:
    """Re-encrypt stored ID numbers under the active key (after adding a new key; see infra/README.md)."""
    from backend.core.db import session_scope
    from backend.registries import load_all
    from backend.registry.keys import reseal_id_numbers as reseal

    load_all()
    total = 0
    while True:
        with session_scope() as session:
            done = reseal(session, batch=batch)
            session.commit()
        total += done
        if done == 0:
            break
    typer.echo(f"re-sealed {total} ID numbers under the active key")


@app.command("canonicalise-id-numbers")
def canonicalise_id_numbers(batch: Annotated[int, typer.Option(help="Rows read per statement")] = 1000) -> None:
    """Rewrite stored ID numbers typed in full-width or other digits in their canonical ASCII form (once,
    after upgrading to revision 0012; needs the ID-number keys). Exits 1 naming duplicates stored
    before the fix, which a person must merge."""
    from backend.core.db import session_scope
    from backend.registries import load_all
    from backend.registry.canonicalise import canonicalise_id_numbers as canonicalise

    load_all()
    with session_scope() as session:
        report = canonicalise(session, batch=batch)
        session.commit()
    typer.echo(f"rewrote {report.rewritten} ID numbers in canonical form")
    for table, row_id, holder_id in report.duplicates:
        typer.echo(f"{table} {row_id}: the same number as {table} {holder_id}; left as it is, merge them", err=True)
    if report.duplicates:
        raise typer.Exit(code=1)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit hash chain and hold it to every signed checkpoint; exit 1 at the first broken
    link or contradicted checkpoint, or when anchoring stopped: the newest checkpoint, or the gap
    between two consecutive ones, older than 3 × the interval + the grace (the worker signs a
    heartbeat every interval, grown or not)."""
    from backend.audit.checkpoints import verify_log
    from backend.core.db import session_scope
    from backend.registries import load_all

    load_all()
    with session_scope() as session:
        verdict = verify_log(session)
    chain = verdict.chain
    if verdict.ok:
        typer.echo(f"audit chain intact: {chain.entries_checked} entries")
        if verdict.newest is None:
            typer.echo(f"no audit checkpoints in {verdict.location}: nothing outside the database vouches "
                       "for the chain")
        else:
            typer.echo(f"{verdict.checkpoints_checked} checkpoints in {verdict.location} agree; the newest covers "
                       f"{verdict.newest.tree_size} entries, signed at {verdict.newest.signed_at.isoformat()}; "
                       f"{verdict.unanchored_entries} entries after it are not yet anchored")
        return
    report: dict[str, object] = {"ok": False, "first_broken_id": chain.first_broken_id, "reason": chain.reason,
                                 "entries_checked": chain.entries_checked,
                                 "checkpoints_checked": verdict.checkpoints_checked,
                                 "checkpoints_contradicted": len(verdict.problems),
                                 "anchoring_stopped": verdict.anchoring_stopped}
    first = verdict.first_contradicted
    if first is not None:
        report["first_contradicted_checkpoint"] = {
            "file": f"{verdict.location.rstrip('/')}/{first.name}", "tree_size": first.tree_size,
            "signed_at": first.signed_at.isoformat() if first.signed_at else None, "reason": first.reason}
    typer.echo(json.dumps(report, ensure_ascii=False))
    sys.exit(1)


@audit_app.command("keygen")
def audit_keygen(
    out: Annotated[Path, typer.Option(help="Where to write the private key (PEM, mode 0600; never overwritten)")],
) -> None:
    """Make an Ed25519 key pair for audit checkpoints: the private key file is mounted into the
    worker only; the printed public key goes into HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS."""
    from backend.audit.checkpoints import generate_key_file, key_id, public_key_text

    try:
        public = generate_key_file(out)
    except FileExistsError:
        typer.echo(f"{out} already exists; not overwritten", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"private key written to {out} (key id {key_id(public)}): mount it into the worker as "
               "HULEI_AUDIT_CHECKPOINT_KEY_FILE")
    typer.echo(f"HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS={public_key_text(public)}")


if __name__ == "__main__":
    app()
