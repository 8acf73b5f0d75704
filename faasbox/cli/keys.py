"""`faasbox keys`: the access keys that sign requests to the Lambda and management APIs.

They work on the data dir (or the server's --database) itself, not through a server: issuing a
key is done by whoever can write the data dir, and a running server sees new and deleted keys
without a restart.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from faasbox.errors import FaasboxError

if TYPE_CHECKING:
    from faasbox.registry.access_keys import AccessKeyStore

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(f: F) -> F:
    return click.option(
        "--data-dir",
        envvar="FAASBOX_HOME",
        default=".faasbox",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="The server's data dir (FAASBOX_HOME).",
    )(f)


def _checked_database(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from faasbox.storage import Database, DatabaseUrlError

    try:
        Database.open(value, Path("."))
    except DatabaseUrlError as e:
        raise click.BadParameter(str(e)) from None
    return value or None


def database_option(f: F) -> F:
    return click.option(
        "--database",
        envvar="FAASBOX_DATABASE",
        default=None,
        callback=_checked_database,
        metavar="URL",
        help="postgresql://user:password@host/dbname, shared by gateways (FAASBOX_DATABASE); "
        "default: the SQLite file in the data dir.",
    )(f)


def _fail(error: FaasboxError) -> None:
    err.print(f"[bold red]Error:[/] {error}")
    sys.exit(1)


@click.group()
def keys() -> None:
    """Issue, list and delete the access keys that sign requests (SigV4)."""


@keys.command("create")
@click.option("--description", "-d", default="", help="What or who the key is for.")
@data_dir_option
@database_option
def create(description: str, data_dir: Path, database: str | None) -> None:
    """Issue a key; its secret is printed once, as an AWS credentials file profile."""
    from faasbox.registry.access_keys import AccessKeyStore, credentials_text

    try:
        store = AccessKeyStore(data_dir, database)
        key, credentials = store.create(description)
        store.close()
    except FaasboxError as e:
        _fail(e)
        return
    # stdout is a credentials file ("faasbox keys create > creds" works); the rest is stderr.
    out.print(credentials_text(credentials), end="", markup=False)
    err.print(
        f"Created access key [bold]{key.access_key_id}[/] in {data_dir}. Its secret is shown "
        "only now: faasbox keeps it encrypted and cannot show it again.",
    )


@keys.command("list")
@data_dir_option
@database_option
def list_keys(data_dir: Path, database: str | None) -> None:
    """List the keys (never their secrets)."""
    from faasbox.registry.access_keys import DB_FILE, AccessKeyStore

    if database is None and not (data_dir / DB_FILE).exists():
        err.print(f"No access keys in {data_dir}; 'faasbox keys create' issues one.")
        return
    try:
        store = AccessKeyStore(data_dir, database)
        found = store.all()
        store.close()
    except FaasboxError as e:
        _fail(e)
        return
    if not found:
        err.print(f"No access keys in {data_dir}; 'faasbox keys create' issues one.")
        return
    table = Table("access key id", "description", "created")
    for key in found:
        table.add_row(key.access_key_id, key.description, key.created_at)
    out.print(table)


@keys.command("delete")
@click.argument("access_key_id")
@data_dir_option
@database_option
def delete(access_key_id: str, data_dir: Path, database: str | None) -> None:
    """Delete a key: requests signed with it are refused from now on."""
    from faasbox.registry.access_keys import DB_FILE, AccessKeyStore

    try:
        deleted = False
        if database is not None or (data_dir / DB_FILE).exists():
            store = AccessKeyStore(data_dir, database)
            deleted = store.delete(access_key_id)
            store.close()
    except FaasboxError as e:
        _fail(e)
        return
    if not deleted:
        err.print(f"[bold red]Error:[/] no access key {access_key_id} in {data_dir}")
        sys.exit(1)
    out.print(f"Deleted access key {access_key_id}")


# --- what `faasbox serve` says about auth ---


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_unsafe_no_auth(host: str, no_auth: bool, unsafe: bool) -> None:
    if no_auth and not unsafe and not is_loopback(host):
        raise click.UsageError(
            f"--no-auth with --host {host} would let anyone who can reach this machine deploy "
            "and run code on it. Keep --host 127.0.0.1, drop --no-auth, or add "
            "--i-know-this-is-unsafe."
        )


def prepare_access_keys(store: AccessKeyStore) -> None:
    """Create the admin key on a data dir that has none, load every key, and say so."""
    from faasbox.registry.access_keys import PROFILE, ensure_admin_key

    admin = ensure_admin_key(store)
    count = store.load()
    if admin is not None:
        key, path = admin
        out.print(
            f"Created the admin access key [bold]{key.access_key_id}[/]; it is in {path} "
            f"(profile \\[{PROFILE}], readable only by you)."
        )
    else:
        out.print(f"Requests must be signed (SigV4) by one of the {count} access key(s).")


def warn_no_auth(url: str) -> None:
    err.print(
        f"[bold red]WARNING: authentication is OFF (--no-auth). Anyone who can reach {url} can "
        "deploy, run and delete functions on this machine. For local development only.[/]"
    )


def print_try_lines(
    url: str,
    function: str,
    key: str,
    data_dir: Path,
    auth: bool,
    default_url: str,
    command: str = "faasbox",
) -> None:
    """Commands that work against this server as it runs, to copy and paste; `command` runs
    faasbox as the user ran it."""
    from faasbox.registry.access_keys import CREDENTIALS_FILE, PROFILE, read_credentials_file

    event = '\'{"name": "you"}\''
    invoke_url = f"{url}/2015-03-31/functions/{function}/invocations"
    cli = f"{command} invoke"
    if auth and data_dir.resolve() != Path(".faasbox").resolve():
        cli = f"FAASBOX_HOME={shlex.quote(str(data_dir))} {cli}"
    if url != default_url:
        cli += f" --url {url}"
    out.print("Try:")
    out.print(f"  {cli} -f {key} -d {event} --log", markup=False)
    if not auth:
        out.print(f"  curl -s -X POST {invoke_url} -d {event}", markup=False)
        return
    credentials = data_dir / CREDENTIALS_FILE
    if read_credentials_file(credentials, PROFILE) is None:
        out.print(
            "  (sign with a key from 'faasbox keys create', as AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY)",
            markup=False,
        )
        return
    quoted = shlex.quote(str(credentials))
    out.print(f"  KEY=$(sed -n 's/^aws_access_key_id = //p' {quoted})", markup=False)
    out.print(f"  SECRET=$(sed -n 's/^aws_secret_access_key = //p' {quoted})", markup=False)
    out.print(
        f'  curl -s --aws-sigv4 "aws:amz:us-east-1:lambda" --user "$KEY:$SECRET" '
        f"-X POST {invoke_url} -d {event}",
        markup=False,
    )
