"""The `faasbox` command: the Serverless Framework's verbs where they overlap.

The only package that prints. Errors from faasbox.errors become one red line and a non-zero
exit code: 1 for a failed function or operation, 2 for bad usage or an invalid file, 3 when
no server is reachable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from faasbox.cli.async_invocations import async_command, print_async_state
from faasbox.cli.dapr import dapr_options, start_dapr
from faasbox.cli.deploy_function import (
    SERVICE_COMMAND,
    DeployGroup,
    deploy_function,
    print_deploy_result,
    upload_args,
)
from faasbox.cli.info import info as info_command
from faasbox.cli.keys import database_option as keys_database_option
from faasbox.cli.keys import keys as keys_command
from faasbox.cli.logs import logs as logs_command
from faasbox.cli.output import print_progress
from faasbox.cli.package import layer as layer_command
from faasbox.cli.package import package as package_command
from faasbox.cli.print_config import print_config as print_config_command
from faasbox.cli.remove_service import remove_service as remove_service_command
from faasbox.cli.schedules import schedules as schedules_command
from faasbox.cli.self_command import self_command
from faasbox.dapr.settings import DaprSettings
from faasbox.errors import ConfigError, FaasboxError, ServerUnreachable
from faasbox.gateway.edge_limits import DEFAULT_MAX_CONNECTIONS, EdgeLimits

# What only some commands need (the configuration and its models, the registry, the server)
# is imported in them: `--help` and the client's commands start without it.
if TYPE_CHECKING:
    from faasbox.config import ServiceSpec
    from faasbox.gateway.server import Server
    from faasbox.registry.models import DeployedFunction

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_URL = "http://127.0.0.1:8000"
F = TypeVar("F", bound=Callable[..., Any])


def _force_option(f: F) -> F:
    return click.option(
        "--force",
        is_flag=True,
        help="Move function names and routes that another service owns to this one.",
    )(f)


def _url_option(f: F) -> F:
    return click.option(
        "--url",
        envvar="FAASBOX_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The faasbox server to talk to.",
    )(f)


def _region_option(f: F) -> F:
    return click.option(
        "--region",
        default=None,
        help="The region (${opt:region}) to deploy to; default provider.region, else us-east-1.",
    )(f)


def _parse_params(
    ctx: click.Context, option: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    params: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key.strip():
            raise click.BadParameter(f"expected key=value, got {value!r}", ctx, option)
        params[key.strip()] = text
    return params


def _param_option(f: F) -> F:
    return click.option(
        "--param",
        "params",
        multiple=True,
        callback=_parse_params,
        metavar="KEY=VALUE",
        help="A ${param:KEY} value, over the file's params:; repeat for more.",
    )(f)


def _cli_options(stage: str | None, region: str | None) -> dict[str, str]:
    """The options ${opt:...} reads: only those given."""
    given = {"stage": stage, "region": region}
    return {name: value for name, value in given.items() if value}


def _fail(error: FaasboxError) -> None:
    err.print(f"[bold red]Error:[/] {escape(str(error))}")
    code = 2 if isinstance(error, ConfigError) else 3 if isinstance(error, ServerUnreachable) else 1
    sys.exit(code)


def find_services(
    path: Path, options: dict[str, str], params: dict[str, str] | None = None
) -> list[ServiceSpec]:
    """Every service under `path`: the folder itself if it has a serverless.yml, else each
    direct subfolder that has one."""
    from faasbox.config import load_service

    if path.is_file() or any((path / n).exists() for n in ("serverless.yml", "serverless.yaml")):
        return [load_service(path, options, params=params)]
    if not path.is_dir():
        raise ConfigError(str(path), "", "no such file or folder")
    specs = [
        load_service(sub, options, params=params)
        for sub in sorted(path.iterdir())
        if sub.is_dir() and any((sub / n).exists() for n in ("serverless.yml", "serverless.yaml"))
    ]
    if not specs:
        raise ConfigError(str(path), "", "no serverless.yml here or in its subfolders")
    return specs


def _print_moved(moved: list[str]) -> None:
    for what in moved:
        out.print(f"  [yellow]moved[/] {what}")


def _print_new_api_keys(keys: list[tuple[str, str]]) -> None:
    for name, value in keys:
        out.print(f"  api key [bold]{name}[/]: {value}  (shown once; only its hash is kept)")


def _print_image_try_line(functions: list[DeployedFunction], url: str) -> None:
    """The curl line for the image service's grayscale route, when it is deployed."""
    for fn in functions:
        if fn.config.key != "grayscale":  # the image service's (wasm-grayscale's is another key)
            continue
        for event in fn.config.events:
            route = event.get("http")
            if isinstance(route, dict) and str(route.get("method", "")).lower() == "post":
                path = "/" + str(route["path"]).lstrip("/")
                sample = Path("examples/image-service/sample.jpg")
                out.print(
                    f"  curl -X POST --data-binary @{sample} -H 'content-type: image/jpeg' "
                    f"{url}{path} -o gray.jpg"
                )
                return


def _watch(
    specs: list[ServiceSpec],
    options: dict[str, str],
    params: dict[str, str],
    server: Server,
    force: bool,
) -> None:
    """Redeploy a service whenever its folder changes, for as long as the server runs."""
    import threading

    from faasbox.config import load_service
    from faasbox.registry.services import deploy_service
    from faasbox.registry.watcher import watch_services

    def redeploy(root: Path) -> None:
        try:
            spec = load_service(root, options, params=params)
            change, new_keys = deploy_service(
                server.registry, spec, server.api_keys, force=force, progress=print_progress
            )
        except FaasboxError as e:
            err.print(f"[yellow]Not redeployed:[/] {e}", markup=False)
            return
        if change.changed or change.removed:
            changed = ", ".join(change.changed + change.removed)
            out.print(f"Redeployed [bold]{spec.name}[/]: {changed}")
        _print_moved(change.moved)
        _print_new_api_keys([(k.name, k.value) for k in new_keys])

    watch_services([s.root for s in specs], redeploy, threading.Event())
    out.print(f"Watching {len(specs)} service folder(s) for changes.")


def _warn(spec: ServiceSpec) -> None:
    for warning in spec.warnings:
        err.print(f"[yellow]Warning:[/] {warning}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="faasbox")
def cli() -> None:
    """faasbox: run Lambda-style functions on your own machine."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )


@cli.command()
@click.argument("directories", nargs=-1, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--data-dir",
    envvar="FAASBOX_HOME",
    default=".faasbox",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where functions and code are kept.",
)
@keys_database_option
@click.option("--stage", default=None, help="The stage (${opt:stage}) to deploy.")
@_region_option
@_param_option
@click.option(
    "--max-workers",
    type=click.IntRange(min=1),
    default=None,
    help="Global cap on workers running at once, all functions together (default: 4 per "
    "core, fewer where memory is short).",
)
@click.option(
    "--max-live-workers",
    type=click.IntRange(min=1),
    default=None,
    help="Global cap on live workers, idle ones too (default: one per 256 MB of available "
    "memory; never fewer than --max-workers).",
)
@click.option(
    "--idle-timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds before an idle warm worker is stopped.",
)
@click.option(
    "--queue-timeout",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds a request waits for a busy function before a 429.",
)
@click.option(
    "--async-retry-delay",
    type=click.FloatRange(min=0.01),
    default=60.0,
    show_default=True,
    help="Seconds before a failed async invocation's first retry (the second waits twice this).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Accept unsigned requests on the Lambda and management APIs (local development only).",
)
@click.option("--watch", is_flag=True, help="Redeploy a service when a file in its folder changes.")
@_force_option
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=EdgeLimits.header_timeout_s,
    show_default=True,
    help="Seconds a client has to send a request's headers (then 408).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0.1),
    default=EdgeLimits.body_timeout_s,
    show_default=True,
    help="Seconds a request's body may pause before the client is disconnected.",
)
@click.option(
    "--keep-alive-timeout",
    type=click.FloatRange(min=0.1),
    default=EdgeLimits.keep_alive_timeout_s,
    show_default=True,
    help="Seconds an idle kept-alive connection stays open.",
)
@click.option(
    "--max-header-bytes",
    type=click.IntRange(min=1024),
    default=EdgeLimits.max_header_bytes,
    show_default=True,
    help="Bytes of a request's line and headers together (then 431).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    help=f"Open connections at most (default {DEFAULT_MAX_CONNECTIONS}, below the fd limit).",
)
@click.option(
    "--max-connections-per-client",
    type=click.IntRange(min=1),
    default=EdgeLimits.max_connections_per_client,
    show_default=True,
    help="Open connections from one client address at most (then 503).",
)
@click.option(
    "--zygote/--no-zygote",
    default=True,
    show_default=True,
    help="Fork workers from preloaded zygotes (fast cold starts), or spawn each one.",
)
@click.option(
    "--jail/--no-jail",
    default=True,
    hidden=True,  # benchmarks only: the cold-start bench compares both, side by side
    help="Jail each function's workers (own uid, namespaces, root); on by default.",
)
@click.option(
    "--require-isolation",
    is_flag=True,
    help="Refuse to start unless every function can run in its own jail (root, namespaces).",
)
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS",
    help=(
        "Run functions on this Ray cluster (what ray.init(address=...) takes, e.g. "
        "127.0.0.1:6379 or auto), each environment an actor on a node; needs faasbox[ray]."
    ),
)
@click.option(
    "--log-retention-mb",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="MB of invocation logs kept per function in the data dir (the oldest go first).",
)
@click.option(
    "--log-retention-days",
    type=click.FloatRange(min=0, min_open=True),
    default=7.0,
    show_default=True,
    help="Days invocation logs are kept.",
)
@click.option(
    "--memory-logs",
    is_flag=True,
    help="Keep invocation logs in memory only (lost when the server stops).",
)
@click.option(
    "--metrics-public",
    is_flag=True,
    help="Serve /metrics without a signature (for a Prometheus scraper).",
)
@click.option("-q", "--quiet", is_flag=True, help="No access log line per request.")
@click.option(
    "--i-know-this-is-unsafe",
    "unsafe",
    is_flag=True,
    help="Allow --no-auth on a --host other than loopback.",
)
@dapr_options
def serve(
    directories: tuple[Path, ...],
    host: str,
    port: int,
    data_dir: Path,
    database: str | None,
    stage: str | None,
    region: str | None,
    params: dict[str, str],
    max_workers: int | None,
    max_live_workers: int | None,
    idle_timeout: float,
    queue_timeout: float,
    async_retry_delay: float,
    no_auth: bool,
    unsafe: bool,
    watch: bool,
    force: bool,
    header_timeout: float,
    body_timeout: float,
    keep_alive_timeout: float,
    max_header_bytes: int,
    max_connections: int | None,
    max_connections_per_client: int,
    zygote: bool,
    jail: bool,
    require_isolation: bool,
    ray_address: str | None,
    log_retention_mb: int,
    log_retention_days: float,
    memory_logs: bool,
    metrics_public: bool,
    quiet: bool,
    dapr: DaprSettings | None,
    dapr_ports_required: tuple[bool, bool],
) -> None:
    """Deploy the services in DIRECTORIES (default: examples) and serve them."""
    from faasbox.cli import keys
    from faasbox.cli.access_log import print_access_log
    from faasbox.execution.settings import RuntimeSettings
    from faasbox.gateway.server import bind_socket, build_server, run
    from faasbox.registry.services import deploy_service
    from faasbox.storage import Database, DatabaseError

    keys.refuse_unsafe_no_auth(host, no_auth, unsafe)
    options = _cli_options(stage, region)
    # First: a port in use (a second `make run`) fails before anything is deployed.
    try:
        sock = bind_socket(host, port)
    except OSError as e:
        err.print(f"[bold red]Error:[/] cannot listen on {host}:{port}: {e.strerror}")
        sys.exit(1)
    try:
        specs = [
            spec
            for directory in directories or (Path("examples"),)
            for spec in find_services(directory, options, params)
        ]
        settings_kwargs: dict[str, Any] = {
            "data_dir": data_dir.resolve(),
            "database": database,
            "idle_timeout_s": idle_timeout,
            "queue_timeout_s": queue_timeout,
            "async_retry_delay_s": async_retry_delay,
            "use_zygote": zygote,
            "jail": jail,
            "persist_logs": not memory_logs,
            "log_retention_bytes": log_retention_mb << 20,
            "log_retention_s": log_retention_days * 86400,
        }
        if max_workers:
            settings_kwargs["max_workers"] = max_workers
        if max_live_workers:
            settings_kwargs["max_live_workers"] = max_live_workers
        if ray_address is not None:
            _join_ray(ray_address)
            settings_kwargs["ray_address"] = ray_address
        settings = RuntimeSettings(**settings_kwargs)
        try:
            server = build_server(settings, auth=not no_auth, metrics_public=metrics_public)
        except DatabaseError as e:
            where = Database.open(database, settings.data_dir).describe()
            err.print(f"[bold red]Error:[/] cannot use the database {where}: {e}")
            sys.exit(1)
        _check_isolation(server.invoker.isolation_missing(), require_isolation)
        if server.access_keys is not None:
            keys.prepare_access_keys(server.access_keys)
        for spec in specs:
            _warn(spec)
            change, new_keys = deploy_service(
                server.registry, spec, server.api_keys, force=force, progress=print_progress
            )
            names = ", ".join(f.name for f in change.deployed)
            out.print(f"Deployed [bold]{spec.name}[/] ({spec.stage}): {names}")
            _print_moved(change.moved)
            _print_new_api_keys([(k.name, k.value) for k in new_keys])
        if dapr is not None:
            start_dapr(
                server, dapr, list(directories or (Path("examples"),)), dapr_ports_required, out
            )
    except FaasboxError as e:
        _fail(e)
        return
    port = sock.getsockname()[1]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    example = next((f for f in server.registry.all() if f.config.key == "hello"), None)
    stored = f"data in {settings.data_dir}"
    if server.registry.database.shared:
        stored += f", database {escape(server.registry.database.describe())}"
    out.print(f"\nfaasbox is serving on [bold cyan]{url}[/]  ({stored})")
    out.print(f"Web page: [bold cyan]{url}/ui/[/]")
    _print_image_try_line(server.registry.all(), url)
    if no_auth:
        keys.warn_no_auth(url)
    if example is not None:
        keys.print_try_lines(
            url,
            example.name,
            example.config.key or example.name,
            data_dir,
            not no_auth,
            DEFAULT_URL,
            self_command(),
        )
    if watch:
        _watch(specs, options, params, server, force)
    out.print("Press Ctrl+C to stop.", style="dim")
    sys.stdout.flush()
    if not quiet:
        print_access_log()
    # uvicorn re-raises the SIGINT it handled, after a clean shutdown.
    limits = EdgeLimits(
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        keep_alive_timeout_s=keep_alive_timeout,
        max_header_bytes=max_header_bytes,
        max_header_line_bytes=min(EdgeLimits.max_header_line_bytes, max_header_bytes),
        max_connections=max_connections,
        max_connections_per_client=max_connections_per_client,
    )
    with contextlib.suppress(KeyboardInterrupt):
        run(server, sock, limits)
    out.print("faasbox stopped.")


def _join_ray(address: str) -> None:
    """Connect to the Ray cluster now, so a wrong address or a missing extra is said first."""
    try:
        from faasbox.execution.ray.executor import connect
    except ImportError:
        err.print(
            "[bold red]Error:[/] --ray needs Ray: pip install 'faasbox[ray]' "
            "(the same version on every node of the cluster)"
        )
        sys.exit(1)
    try:
        connect(address)
    except (ConnectionError, ValueError, RuntimeError) as e:
        err.print(f"[bold red]Error:[/] cannot join the Ray cluster at {address!r}: {e}")
        sys.exit(1)


def _check_isolation(missing: list[str], required: bool) -> None:
    """Say loudly what keeps functions out of their jails; with --require-isolation, stop."""
    if not missing:
        return
    lines = "\n".join(f"  - {what}" for what in missing)
    if required:
        err.print(
            "[bold red]Error:[/] --require-isolation: functions cannot be isolated from each "
            f"other and from the server here; missing:\n{lines}"
        )
        sys.exit(1)
    err.print(
        "[bold yellow]WARNING: functions are NOT isolated[/]: they run with the server's "
        "identity and can read its data dir (keys, every function's code), signal and trace "
        f"its processes. Missing here:\n{lines}\n"
        "Run faasbox serve as root on Linux to jail each function; "
        "--require-isolation refuses to start without it."
    )


@cli.group("deploy", cls=DeployGroup)
def deploy_group() -> None:
    """Deploy a service (faasbox deploy [DIRECTORY]) or one function of it
    (faasbox deploy function -f NAME)."""


@deploy_group.command(SERVICE_COMMAND)
@click.argument("directory", default=".", type=click.Path(path_type=Path))
@click.option(
    "-c", "--config", "config", type=click.Path(path_type=Path), help="A serverless.yml to deploy."
)
@click.option("--stage", default=None, help="The stage (${opt:stage}) to deploy.")
@_region_option
@_param_option
@_force_option
@_url_option
def deploy(
    directory: Path,
    config: Path | None,
    stage: str | None,
    region: str | None,
    params: dict[str, str],
    force: bool,
    url: str,
) -> None:
    """Deploy the service(s) in DIRECTORY (or --config FILE) to a running server.

    `faasbox deploy function -f NAME` deploys one function of a service."""
    from faasbox.cli.client import Client
    from faasbox.registry.services import function_configs

    client = Client(url)
    try:
        for spec in find_services(config or directory, _cli_options(stage, region), params):
            _warn(spec)
            configs = [c.to_dict() for c in function_configs(spec)]
            existed = {fn["name"] for fn in client.functions()}
            result = client.deploy(
                spec.name, configs, api_keys=list(spec.api_keys), force=force, **upload_args(spec)
            )
            print_deploy_result(result, existed, url)
            for layer in result.get("layers", []):
                out.print(f"  layer {layer['key']}: {layer['arn']}")
            _print_moved(result.get("moved", []))
            _print_new_api_keys([(k["name"], k["value"]) for k in result.get("apiKeys", [])])
            out.print(f"Deployed [bold]{spec.name}[/] ({spec.stage}, {spec.region}) to {url}")
    except FaasboxError as e:
        _fail(e)


def _payload(data: str | None, path: Path | None) -> bytes:
    if data is not None and path is not None:
        raise click.UsageError("give either --data or --path, not both")
    raw = path.read_bytes() if path is not None else (data or "").encode()
    if raw.strip():
        try:
            json.loads(raw)
        except ValueError:
            raw = json.dumps(raw.decode("utf-8", "replace")).encode()  # plain text -> a string
    return raw


def _print_result(payload: bytes, function_error: str | None, log: str | None) -> None:
    try:
        text = json.dumps(json.loads(payload), indent=4) if payload else ""
    except ValueError:
        text = payload.decode("utf-8", "replace")
    (err if function_error else out).print(text, markup=False)
    if log is not None:
        err.print("-" * 40, style="dim")
        err.print(log.rstrip("\n"), markup=False, style="dim")
    if function_error:
        sys.exit(1)


@cli.group(invoke_without_command=True)
@click.option("-f", "--function", "function", help="The function's name or serverless key.")
@click.option(
    "-d", "--data", default=None, help="The event, as JSON (plain text is sent as a JSON string)."
)
@click.option(
    "-p",
    "--path",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A file holding the event.",
)
@click.option("-l", "--log", is_flag=True, help="Show the invocation's log.")
@click.option(
    "-t",
    "--type",
    "invocation_type",
    default="RequestResponse",
    type=click.Choice(["RequestResponse", "Event", "DryRun"]),
    show_default=True,
)
@click.option("-q", "--qualifier", default=None, help="A published version.")
@click.option(
    "--context",
    "client_context",
    default=None,
    help="The ClientContext, as JSON: the function sees it as context.client_context.",
)
@click.option("--raw", is_flag=True, help="Send --data as a JSON string, even if it is JSON.")
@_url_option
@click.pass_context
def invoke(
    ctx: click.Context,
    function: str | None,
    data: str | None,
    path: Path | None,
    log: bool,
    invocation_type: str,
    qualifier: str | None,
    client_context: str | None,
    raw: bool,
    url: str,
) -> None:
    """Invoke a deployed function on a running server."""
    if ctx.invoked_subcommand is not None:
        return
    if not function:
        raise click.UsageError("Missing option '-f' / '--function'.")
    from faasbox.cli.client import Client
    from faasbox.cli.invoke_options import client_context_header, raw_payload

    try:
        payload = raw_payload(data, path) if raw else _payload(data, path)
        response = Client(url).invoke(
            function,
            payload,
            invocation_type=invocation_type,
            log=log,
            qualifier=qualifier,
            client_context=client_context_header(client_context),
        )
    except FaasboxError as e:
        _fail(e)
        return
    if invocation_type != "RequestResponse":
        out.print(
            f"{invocation_type} accepted ({response.status}), RequestId {response.request_id}"
        )
        if invocation_type == "Event" and response.request_id:
            print_async_state(Client(url), response.request_id)
        return
    _print_result(response.payload, response.function_error, response.log if log else None)


@invoke.command("local")
@click.option("-f", "--function", "function", required=True, help="The function's key.")
@click.option("-d", "--data", default=None)
@click.option(
    "-p",
    "--path",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
)
@click.option("-l", "--log", is_flag=True)
@click.option(
    "-c",
    "--config",
    "service_dir",
    default=".",
    type=click.Path(path_type=Path),
    show_default=True,
    help="The service's folder or serverless.yml.",
)
@click.option("--stage", default=None, help="The stage (${opt:stage}).")
@_region_option
@_param_option
def invoke_local(
    function: str,
    data: str | None,
    path: Path | None,
    log: bool,
    service_dir: Path,
    stage: str | None,
    region: str | None,
    params: dict[str, str],
) -> None:
    """Run a function from its source folder, without a server."""
    from faasbox.config import load_service
    from faasbox.dependencies import default_cache_dir, dependency_files
    from faasbox.execution.local import invoke_local as run_local
    from faasbox.registry.packaging import plan
    from faasbox.registry.services import function_configs

    try:
        spec = load_service(service_dir, _cli_options(stage, region), params=params)
        _warn(spec)
        configs = {c.key: c for c in function_configs(spec)}
        config = configs.get(function) or next(
            (c for c in configs.values() if c.name == function), None
        )
        if config is None:
            raise ConfigError(
                str(spec.file),
                f"functions.{function}",
                "no such function; this service has " + ", ".join(str(k) for k in configs),
            )
        # The files a deploy would ship: its dependencies installed (cached) first.
        installed = dependency_files(spec, default_cache_dir(), _progress_to_stderr)
        packages = plan(spec, installed)
        layers = []
        for layer in config.layers:  # the service's own, by key; an ARN needs a server
            source = packages.layers.get(layer)
            if source is None or source.artifact is not None:
                err.print(f"[yellow]Warning:[/] invoke local runs without layer {layer}")
            else:
                layers.append(list(source.files()))
        code = packages.functions.get(config.name) or packages.service
        package = None  # an artifact or no dependencies: run in place from the folder
        if code is not None and code.artifact is None and code.extra:
            package = list(code.files())
        result = run_local(config, spec.root, _payload(data, path), layers, package)
    except FaasboxError as e:
        _fail(e)
        return
    _print_result(result.payload, result.function_error, result.log if log else None)


def _progress_to_stderr(line: str) -> None:
    """Install progress of `invoke local`, on stderr: stdout is the function's result."""
    err.print(line, markup=False)


@cli.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the functions as JSON.")
@_url_option
def list_functions(as_json: bool, url: str) -> None:
    """List the deployed functions (whole names when piped; --json for programs)."""
    from faasbox.cli.client import Client
    from faasbox.cli.output import print_json, print_rows

    try:
        functions = Client(url).functions()
    except FaasboxError as e:
        _fail(e)
        return
    if as_json:
        print_json(functions)
        return
    rows = []
    for fn in functions:
        cfg = fn["config"]
        rows.append(
            [
                fn["name"],
                cfg.get("service") or "",
                cfg["runtime"],
                cfg["handler"],
                f"{cfg['memory_size']} MB",
                f"{cfg['timeout']:g} s",
                fn["lastModified"],
            ]
        )
    headers = ["name", "service", "runtime", "handler", "memory", "timeout", "modified"]
    print_rows(out, headers, rows)


@cli.command("rm")
@click.argument("name")
@_url_option
def remove(name: str, url: str) -> None:
    """Remove a deployed function."""
    from faasbox.cli.client import Client

    try:
        Client(url).remove(name)
    except FaasboxError as e:
        _fail(e)
        return
    out.print(f"Removed {name}")


cli.add_command(keys_command)
cli.add_command(async_command)
cli.add_command(package_command)
cli.add_command(layer_command)
deploy_group.add_command(deploy_function)
cli.add_command(schedules_command)
cli.add_command(info_command)
cli.add_command(remove_service_command)
cli.add_command(print_config_command)
cli.add_command(logs_command)


def main() -> None:
    cli()
