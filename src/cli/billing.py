"""`keel billing …`: operator commands for Stripe billing."""

from __future__ import annotations

import asyncio

import typer

billing_app = typer.Typer(help="Stripe billing, from the operator's console.", no_args_is_help=True)


@billing_app.command("reconcile")
def reconcile() -> None:
    """Pull every subscription from Stripe now and repair local entitlements that drifted (waits for it)."""
    from src.cli.common import fail, prepare_database, say, settings
    from src.container import build_container, shutdown
    from src.ports.shared import DomainError

    config = settings()
    prepare_database(config)

    async def run():
        container = build_container(config)
        try:
            return await container.reconcile_billing().execute()
        finally:
            await shutdown(container)

    try:
        report = asyncio.run(run())
    except DomainError as exc:
        fail(str(exc))
    if not report.ran:
        say("another reconciliation is running; nothing done")
        return
    say(f"reconciliation {report.run_id}: {report.subscriptions_seen} subscriptions seen, "
        f"{report.repaired} workspaces repaired")
