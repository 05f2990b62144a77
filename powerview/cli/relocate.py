"""`powerview-relocate`: move the operators' folders (secrets/, provisioning/, dashboards/) out of
the checkout, and create the bind-mount sources of docker-compose.yml (powerview.operations.relocate).

    powerview-relocate [--from OLD_CHECKOUT] [--owner USER] [--env-file FILE] [--dry-run]
"""

from __future__ import annotations

import pwd
import sys
from pathlib import Path

import click

from powerview.cli import common as commandline
from powerview.core.envfile import PROJECT_DIR
from powerview.core.exitcodes import ExitCode
from powerview.core.settings import ConfigError, load_env
from powerview.operations.relocate import Relocation, targets

PROG = "powerview-relocate"
EXIT_CODES = commandline.epilog(
    {
        ExitCode.OK: "done (or nothing to do)",
        ExitCode.REJECTED: "conflicts left in place (a target that differs is never overwritten)",
        ExitCode.USAGE: "usage or settings error",
    }
)


def _echo(text: str, to_stderr: bool) -> None:
    click.echo(text, err=to_stderr)


@click.command(context_settings=commandline.CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.option(
    "--from",
    "old",
    type=click.Path(path_type=Path, file_okay=False),
    default=PROJECT_DIR,
    show_default=True,
    help="The old checkout (e.g. the copy moved aside: /srv/powerview_backup_<date>).",
)
@click.option("--owner", help="Owner (user name) of the folders created without an old one, e.g. sftpgo.")
@commandline.env_file_option
@click.option("--dry-run", is_flag=True, help="Say what would be done, change nothing.")
def main(old: Path, owner: str | None, env_file: Path | None, dry_run: bool) -> None:
    """Move secrets/, provisioning/ and dashboards/ out of the checkout; create the targets."""
    commandline.check_env_file(PROG, env_file)
    owner_ids = None
    if owner:
        try:
            entry = pwd.getpwnam(owner)
        except KeyError:
            raise click.UsageError(f"no user {owner!r}") from None
        owner_ids = (entry.pw_uid, entry.pw_gid)
    try:
        folders = targets(load_env(env_file))
    except ConfigError as exc:
        commandline.fail(PROG, ExitCode.USAGE, str(exc))
    relocation = Relocation(dry_run, owner_ids, _echo)
    for folder, target in folders:
        relocation.move_tree(old / folder.name, target, folder.mode)
    if relocation.conflicts:
        click.echo(f"{relocation.conflicts} conflict(s) left in place", err=True)
        sys.exit(ExitCode.REJECTED)


if __name__ == "__main__":
    main()
