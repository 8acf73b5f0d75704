"""serverless-wsgi, without the plugin: a WSGI app (Flask, Django) behind `wsgi_handler.handler`.

The plugin packages two things with a service: its handler module (`wsgi_handler.py`, which
turns API Gateway events into WSGI calls) and a `.serverless-wsgi` file naming the app
(`custom.wsgi.app`, `module.attribute`). faasbox adds the same two files to the package, the
handler being its own (faasbox/dependencies/wsgi_handler.py: stdlib only, so it runs in the
function's environment), when `plugins:` lists serverless-wsgi and `custom.wsgi.app` is set.
A serverless.yml written for the plugin then deploys unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from faasbox.config import ServiceSpec
from faasbox.dependencies import bundle

PLUGIN = "serverless-wsgi"
HANDLER_SOURCE = Path(__file__).with_name("wsgi_handler.py")


def uses_plugin(spec: ServiceSpec) -> bool:
    plugins = spec.raw.get("plugins") or []
    if isinstance(plugins, dict):  # the long form: {modules: [...], localPath: ...}
        plugins = plugins.get("modules") or []
    return isinstance(plugins, list) and PLUGIN in plugins


def app_of(spec: ServiceSpec) -> str | None:
    wsgi = (spec.raw.get("custom") or {}).get("wsgi") or {}
    app = wsgi.get("app") if isinstance(wsgi, dict) else None
    return str(app) if app else None


def files(spec: ServiceSpec, cache_dir: Path, progress: bundle.Progress) -> list[tuple[str, Path]]:
    app = app_of(spec)
    if not uses_plugin(spec) or app is None:
        return []
    config = json.dumps({"app": app}, sort_keys=True)
    bundle_key = bundle.key("wsgi", HANDLER_SOURCE.read_bytes(), config)

    def install(target: Path) -> None:
        (target / "wsgi_handler.py").write_bytes(HANDLER_SOURCE.read_bytes())
        (target / ".serverless-wsgi").write_text(config + "\n")

    folder = bundle.cached(cache_dir, bundle_key, install, lambda line: None)
    progress(f"{spec.name}: serverless-wsgi's wsgi_handler.handler serves {app}")
    return list(bundle.files(folder))
