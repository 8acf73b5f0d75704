"""`runtime: quickjs` through the Invoker: how handlers are found and called (CommonJS, ES
modules by extension or package.json, callbacks, nested paths), and what a broken handler
gets (Lambda's Runtime.* errors), each in its own fresh QuickJS instance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faasbox.config import load_service
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry import Registry
from faasbox.registry.services import deploy_service
from tests.support import run_with_invoker

FILES = {
    "cjs.js": "exports.handler = async (event) => ({ kind: 'commonjs', got: event });\n"
    "exports.deep = { er: { handler: async () => 'nested export' } };\n"
    "exports.cb = (event, context, callback) => callback(null, { id: context.awsRequestId });\n"
    "exports.notfn = 42;\n",
    "esm.mjs": "export const handler = async (event, context) => "
    "({ kind: 'esm', fn: context.functionName, left: context.getRemainingTimeInMillis() > 0 });\n",
    "typed/package.json": '{"type": "module"}',
    "typed/app.js": "export async function main() { return 'module by package.json'; }\n",
    "broken.js": "exports.handler = async () => { return (; };\n",
    "needs.js": "const aws = require('aws-sdk');\nexports.handler = async () => aws;\n",
    "quiet.js": "exports.handler = async () => undefined;\n",
}
HANDLERS = {
    "cjs": "cjs.handler",
    "deep": "cjs.deep.er.handler",
    "cb": "cjs.cb",
    "notfn": "cjs.notfn",
    "missing": "cjs.nope",
    "esm": "esm.handler",
    "typed": "typed/app.main",
    "broken": "broken.handler",
    "needs": "needs.handler",
    "nofile": "nofile.handler",
    "quiet": "quiet.handler",
}


def test_handlers_are_found_and_called_as_on_nodejs(data_dir: Path) -> None:
    folder = data_dir / "qjs"
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    doc: dict[str, Any] = {
        "service": "qjs",
        "provider": {"name": "aws", "runtime": "quickjs"},
        "functions": {key: {"handler": handler} for key, handler in HANDLERS.items()},
    }
    (folder / "serverless.yml").write_text(json.dumps(doc))
    registry = Registry(data_dir)
    deploy_service(registry, load_service(folder))

    async def scenario(invoker: Invoker) -> dict[str, InvocationResult]:
        return {
            key: await invoker.invoke(registry.get(f"qjs-dev-{key}"), b'{"n": 1}')
            for key in HANDLERS
        }

    results = run_with_invoker(RuntimeSettings(data_dir=data_dir), scenario)
    ok = {k: json.loads(r.payload) for k, r in results.items() if r.function_error is None}
    assert ok["cjs"] == {"kind": "commonjs", "got": {"n": 1}}
    assert ok["deep"] == "nested export"
    assert ok["cb"] == {"id": results["cb"].request_id}
    assert ok["esm"] == {"kind": "esm", "fn": "qjs-dev-esm", "left": True}
    assert ok["typed"] == "module by package.json"
    assert ok["quiet"] is None
    errors = {k: json.loads(r.payload) for k, r in results.items() if r.function_error}
    assert {k: e["errorType"] for k, e in errors.items()} == {
        "notfn": "Runtime.HandlerNotFound",
        "missing": "Runtime.HandlerNotFound",
        "broken": "Runtime.UserCodeSyntaxError",
        "needs": "Runtime.ImportModuleError",
        "nofile": "Runtime.ImportModuleError",
    }
    assert errors["missing"]["errorMessage"] == "cjs.nope is undefined or not exported"
    assert errors["notfn"]["errorMessage"] == "cjs.notfn is not a function"
    assert "Cannot find module 'aws-sdk'" in errors["needs"]["errorMessage"]
    assert "Uncaught Exception" in results["nofile"].log
