"""Unit tests of faasbox.config: serverless.yml -> ServiceSpec (files in tmp_path only)."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pydantic
import pytest

from faasbox.config import FunctionSpec, ServiceSpec, load_service
from faasbox.errors import ConfigError
from faasbox.execution.process import node

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"

MINIMAL = """
service: demo
provider:
  name: aws
functions:
  hello:
    handler: handler.hello
"""


def write(folder: Path, text: str, name: str = "serverless.yml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(
    folder: Path,
    text: str,
    options: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> ServiceSpec:
    return load_service(write(folder, text), options, {} if env is None else env)


def fails(
    folder: Path,
    text: str,
    options: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> ConfigError:
    path = write(folder, text)
    with pytest.raises(ConfigError) as caught:
        load_service(path, options, {} if env is None else env)
    assert caught.value.file == str(path)
    assert str(path) in str(caught.value)
    return caught.value


def hello(spec: ServiceSpec) -> FunctionSpec:
    return spec.functions["hello"]


def with_function(settings: str, top: str = "") -> str:
    """A service whose function `hello` has `settings` (YAML lines at function level)."""
    indented = textwrap.indent(textwrap.dedent(settings).strip(), " " * 4)
    return f"service: demo\n{textwrap.dedent(top)}\nfunctions:\n  hello:\n{indented}\n"


# -- defaults and derived values -------------------------------------------------------------


def test_minimal_service_gets_the_serverless_framework_defaults(tmp_path: Path) -> None:
    spec = load(tmp_path, MINIMAL)
    assert spec.name == "demo"
    assert spec.stage == "dev"
    assert spec.region == "us-east-1"
    assert spec.root == tmp_path
    assert spec.file == tmp_path / "serverless.yml"
    assert list(spec.functions) == ["hello"]
    function = hello(spec)
    assert function.key == "hello"
    assert function.name == "demo-dev-hello"
    assert function.runtime == "python3.11"
    assert function.handler == "handler.hello"
    assert function.memory_size == 1024
    assert function.timeout == 6
    assert function.environment == {}
    assert function.events == []
    assert function.layers == []
    assert function.description is None
    assert function.reserved_concurrency is None
    assert function.provisioned_concurrency is None
    assert function.wasm is None
    assert function.package == {}
    assert spec.layers == {}
    assert spec.binary_media_types == []
    assert spec.api_keys == []
    assert spec.warnings == []
    assert spec.raw["functions"] == {"hello": {"handler": "handler.hello"}}


def test_stage_and_region_come_from_options_then_provider_then_defaults(tmp_path: Path) -> None:
    text = MINIMAL.replace("name: aws", "name: aws\n  stage: staging\n  region: eu-west-1")
    from_provider = load(tmp_path, text)
    assert (from_provider.stage, from_provider.region) == ("staging", "eu-west-1")
    from_options = load(tmp_path, text, {"stage": "prod", "region": "ap-south-1"})
    assert (from_options.stage, from_options.region) == ("prod", "ap-south-1")
    assert hello(from_options).name == "demo-prod-hello"


def test_function_name_is_derived_from_service_stage_and_key_unless_given(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: shop
        functions:
          getCart:
            handler: cart.get
          pay:
            handler: pay.run
            name: payments-handler
        """,
        {"stage": "qa"},
    )
    assert spec.functions["getCart"].name == "shop-qa-getCart"
    assert spec.functions["pay"].name == "payments-handler"


def test_functions_keep_the_order_of_the_file(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        functions:
          zeta: {handler: z.h}
          alpha: {handler: a.h}
          mid: {handler: m.h}
        """,
    )
    assert list(spec.functions) == ["zeta", "alpha", "mid"]


def test_functions_given_as_a_list_of_mappings_are_merged(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        functions:
          - one: {handler: a.one}
          - two: {handler: a.two}
        """,
    )
    assert list(spec.functions) == ["one", "two"]
    error = fails(
        tmp_path,
        """
        service: demo
        functions:
          - one: {handler: a.one}
          - one: {handler: a.two}
        """,
    )
    assert error.key_path == "functions.one"
    assert "more than once" in error.message


def test_provider_settings_are_defaults_that_functions_override(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        provider:
          runtime: wasm
          memorySize: 256
          timeout: 30
        functions:
          inherits:
            handler: bin/grey.wasm
          overrides:
            handler: app.main
            runtime: python3.11
            memorySize: 2048
            timeout: 0.5
            description: does things
            reservedConcurrency: 5
            provisionedConcurrency: 2
        """,
    )
    inherits, overrides = spec.functions["inherits"], spec.functions["overrides"]
    assert (inherits.runtime, inherits.memory_size, inherits.timeout) == ("wasm", 256, 30)
    assert (overrides.runtime, overrides.memory_size, overrides.timeout) == (
        "python3.11",
        2048,
        0.5,
    )
    assert overrides.description == "does things"
    assert (overrides.reserved_concurrency, overrides.provisioned_concurrency) == (5, 2)


def test_environment_merges_provider_and_function_and_becomes_text(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        provider:
          environment:
            SHARED: from-provider
            OVERRIDDEN: provider
            COUNT: 3
            RATIO: 1.5
            ENABLED: true
            EMPTY:
        functions:
          hello:
            handler: handler.hello
            environment:
              OVERRIDDEN: function
              DEBUG: false
          other:
            handler: handler.other
        """,
    )
    assert hello(spec).environment == {
        "SHARED": "from-provider",
        "OVERRIDDEN": "function",
        "COUNT": "3",
        "RATIO": "1.5",
        "ENABLED": "true",
        "EMPTY": "",
        "DEBUG": "false",
    }
    assert spec.functions["other"].environment["OVERRIDDEN"] == "provider"
    assert "DEBUG" not in spec.functions["other"].environment


def test_events_package_and_wasm_options_are_kept_as_written(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        functions:
          hello:
            handler: handler.hello
            package:
              patterns: ['!tests/**']
              individually: true
            events:
              - httpApi: GET /hello
              - httpApi: '*'
              - httpApi: {method: post, path: '/items/{id}'}
              - http: GET hello/{name}
              - http: {path: /upload, method: post, cors: true, private: false}
          grey:
            runtime: wasm
            handler: grey.wasm
            wasm: {aot: true, args: [--fast]}
        """,
    )
    assert hello(spec).events == [
        {"httpApi": "GET /hello"},
        {"httpApi": "*"},
        {"httpApi": {"method": "post", "path": "/items/{id}"}},
        {"http": "GET hello/{name}"},
        {"http": {"path": "/upload", "method": "post", "cors": True, "private": False}},
    ]
    assert hello(spec).package == {"patterns": ["!tests/**"], "individually": True}
    assert spec.functions["grey"].wasm == {"aot": True, "args": ["--fast"]}
    assert spec.warnings == []


def test_api_gateway_binary_media_types_api_keys_and_http_api_are_kept(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        provider:
          apiGateway:
            binaryMediaTypes: ['image/png', '*/*']
            apiKeys:
              - simple
              - name: named
                value: abcdefghijklmnopqrstuvwxyz
          httpApi:
            cors: true
        functions:
          hello: {handler: handler.hello}
        """,
    )
    assert spec.binary_media_types == ["image/png", "*/*"]
    assert spec.api_keys == ["simple", {"name": "named", "value": "abcdefghijklmnopqrstuvwxyz"}]
    assert spec.http_api == {"cors": True}


def test_layers_are_parsed_and_referenced_by_ref(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        layers:
          image-deps:
            path: layers/image
            description: Pillow and numpy
            compatibleRuntimes: [python3.11, python3.12]
          prebuilt:
            name: shared-prebuilt
            package: {artifact: dist/layer.zip}
        provider:
          layers:
            - arn:aws:lambda:us-east-1:123456789012:layer:common:1
        functions:
          hello:
            handler: handler.hello
            layers:
              - {Ref: ImageDashdepsLambdaLayer}
              - arn:aws:lambda:us-east-1:123456789012:layer:other:2
          plain:
            handler: handler.plain
        """,
    )
    deps = spec.layers["image-deps"]
    assert (deps.name, deps.path, deps.artifact) == ("image-deps", tmp_path / "layers/image", None)
    assert deps.description == "Pillow and numpy"
    assert deps.compatible_runtimes == ["python3.11", "python3.12"]
    prebuilt = spec.layers["prebuilt"]
    assert (prebuilt.name, prebuilt.path) == ("shared-prebuilt", None)
    assert prebuilt.artifact == tmp_path / "dist/layer.zip"
    assert hello(spec).layers == [
        "image-deps",
        "arn:aws:lambda:us-east-1:123456789012:layer:other:2",
    ]
    assert spec.functions["plain"].layers == [
        "arn:aws:lambda:us-east-1:123456789012:layer:common:1"
    ]


def test_a_ref_to_an_unknown_layer_is_an_error(tmp_path: Path) -> None:
    error = fails(tmp_path, with_function("handler: h.h\nlayers:\n  - {Ref: NopeLambdaLayer}"))
    assert error.key_path == "functions.hello.layers[0]"
    assert "NopeLambdaLayer" in error.message


def test_specs_are_immutable(tmp_path: Path) -> None:
    spec = load(tmp_path, MINIMAL)
    with pytest.raises(pydantic.ValidationError):
        spec.name = "other"
    with pytest.raises(pydantic.ValidationError):
        hello(spec).memory_size = 64


def test_the_models_enforce_lambda_limits_when_built_directly() -> None:
    with pytest.raises(pydantic.ValidationError):
        FunctionSpec(
            key="x",
            name="x",
            runtime="python3.11",
            handler="h.h",
            memory_size=64,
            timeout=6,
            environment={},
            events=[],
            layers=[],
            package={},
        )


def test_the_old_service_name_form_is_accepted(tmp_path: Path) -> None:
    spec = load(tmp_path, MINIMAL.replace("service: demo", "service:\n  name: legacy"))
    assert spec.name == "legacy"
    assert hello(spec).name == "legacy-dev-hello"


# -- where the file is ---------------------------------------------------------------------


def test_a_folder_with_serverless_yml_or_yaml_can_be_loaded(tmp_path: Path) -> None:
    write(tmp_path / "a", MINIMAL)
    write(tmp_path / "b", MINIMAL.replace("demo", "other"), "serverless.yaml")
    by_folder = load_service(tmp_path / "a", env={})
    assert by_folder.file == tmp_path / "a" / "serverless.yml"
    assert by_folder.root == tmp_path / "a"
    assert load_service(tmp_path / "b", env={}).name == "other"
    by_file = load_service(tmp_path / "a" / "serverless.yml", env={})
    assert by_file.file == by_folder.file


def test_a_folder_without_a_service_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_service(tmp_path, env={})
    assert caught.value.file == str(tmp_path)
    assert "no serverless.yml or serverless.yaml" in caught.value.message


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_service(tmp_path / "nope.yml", env={})
    assert caught.value.file == str(tmp_path / "nope.yml")
    assert caught.value.message == "file not found"


# -- variables -----------------------------------------------------------------------------


def test_env_variables_and_their_defaults(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        provider:
          environment:
            SET: ${env:HOME_DIR}
            SINGLE: ${env:UNSET, 'single quoted'}
            DOUBLE: ${env:UNSET, "double, quoted"}
            NUMBER: ${env:UNSET, 42}
            IGNORED_DEFAULT: ${env:HOME_DIR, 'unused'}
        functions:
          hello: {handler: handler.hello}
        """,
        env={"HOME_DIR": "/home/bob"},
    )
    assert hello(spec).environment == {
        "SET": "/home/bob",
        "SINGLE": "single quoted",
        "DOUBLE": "double, quoted",
        "NUMBER": "42",
        "IGNORED_DEFAULT": "/home/bob",
    }


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAASBOX_TEST_VALUE", "from-os")
    path = write(
        tmp_path, with_function("handler: h.h\nenvironment: {X: '${env:FAASBOX_TEST_VALUE}'}")
    )
    assert hello(load_service(path)).environment == {"X": "from-os"}


def test_a_default_keeps_its_type_when_it_is_the_whole_value(tmp_path: Path) -> None:
    spec = load(tmp_path, with_function("handler: h.h\nmemorySize: ${env:MEM, 512}"))
    assert hello(spec).memory_size == 512
    assert spec.raw["functions"]["hello"]["memorySize"] == 512


def test_opt_variables_and_their_defaults(tmp_path: Path) -> None:
    text = with_function(
        "handler: h.h\nenvironment:\n  STAGE: ${opt:stage, 'dev'}\n  FLAG: ${opt:flag, 'off'}"
    )
    assert hello(load(tmp_path, text, {"stage": "prod"})).environment == {
        "STAGE": "prod",
        "FLAG": "off",
    }
    assert hello(load(tmp_path, text)).environment == {"STAGE": "dev", "FLAG": "off"}


def test_opt_stage_falls_back_to_a_nested_self_variable(tmp_path: Path) -> None:
    text = with_function(
        "handler: h.h\nenvironment: {STAGE: '${opt:stage, ${self:provider.stage}}'}",
        top="provider:\n  stage: beta",
    )
    assert hello(load(tmp_path, text)).environment == {"STAGE": "beta"}
    assert hello(load(tmp_path, text, {"stage": "prod"})).environment == {"STAGE": "prod"}
    # The older form, a fallback source written without ${}.
    older = text.replace("${self:provider.stage}", "self:provider.stage")
    assert hello(load(tmp_path, older)).environment == {"STAGE": "beta"}


def test_nested_env_defaults(tmp_path: Path) -> None:
    text = with_function("handler: h.h\nenvironment: {V: '${env:A, ${env:B, \"z\"}}'}")
    assert hello(load(tmp_path, text, env={"A": "a", "B": "b"})).environment == {"V": "a"}
    assert hello(load(tmp_path, text, env={"B": "b"})).environment == {"V": "b"}
    assert hello(load(tmp_path, text)).environment == {"V": "z"}


def test_self_variables_reach_anywhere_in_the_document(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: shop
        custom:
          table: ${self:service}-orders
          sizes: {small: 256, big: 4096}
          regions: [eu-west-1, us-east-2]
        provider:
          stage: beta
          environment:
            TABLE: ${self:custom.table}
            STAGE: ${self:provider.stage}
            SECOND_REGION: ${self:custom.regions.1}
        functions:
          hello:
            handler: handler.hello
            memorySize: ${self:custom.sizes.big}
        """,
    )
    assert hello(spec).environment == {
        "TABLE": "shop-orders",
        "STAGE": "beta",
        "SECOND_REGION": "us-east-2",
    }
    assert hello(spec).memory_size == 4096
    assert spec.raw["custom"]["table"] == "shop-orders"


def test_self_service_gives_the_name_in_the_old_form_too(tmp_path: Path) -> None:
    text = with_function("handler: h.h\nenvironment: {S: '${self:service}'}")
    spec = load(tmp_path, text.replace("service: demo", "service:\n  name: legacy"))
    assert hello(spec).environment == {"S": "legacy"}


def test_sls_stage_is_the_resolved_stage(tmp_path: Path) -> None:
    text = with_function("handler: h.h\nenvironment: {S: '${sls:stage}'}", top="provider: {}")
    assert hello(load(tmp_path, text)).environment == {"S": "dev"}
    assert hello(load(tmp_path, text, {"stage": "prod"})).environment == {"S": "prod"}
    in_provider = text.replace("provider: {}", "provider:\n  stage: beta")
    assert hello(load(tmp_path, in_provider)).environment == {"S": "beta"}


def test_a_whole_value_variable_keeps_the_referenced_type(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        custom:
          mem: 512
          timeout: 2.5
          env: {A: one, B: 2}
          events:
            - httpApi: GET /hello
        functions:
          hello:
            handler: handler.hello
            memorySize: ${self:custom.mem}
            timeout: ${self:custom.timeout}
            environment: ${self:custom.env}
            events: ${self:custom.events}
        """,
    )
    function = hello(spec)
    assert function.memory_size == 512
    assert function.timeout == 2.5
    assert function.environment == {"A": "one", "B": "2"}
    assert function.events == [{"httpApi": "GET /hello"}]
    assert spec.raw["functions"]["hello"]["memorySize"] == 512
    assert spec.raw["functions"]["hello"]["environment"] == {"A": "one", "B": 2}


def test_a_variable_inside_text_is_interpolated(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        custom: {mem: 512, on: true}
        functions:
          hello:
            handler: handler.hello
            description: ${self:service} in ${sls:stage} with ${self:custom.mem} MB
            environment:
              FLAG: flag=${self:custom.on}
              TWO: ${env:A}${env:B}
        """,
        {"stage": "prod"},
        {"A": "x", "B": "y"},
    )
    assert hello(spec).description == "demo in prod with 512 MB"
    assert hello(spec).environment == {"FLAG": "flag=true", "TWO": "xy"}


def test_a_mapping_cannot_be_interpolated_into_text(tmp_path: Path) -> None:
    error = fails(
        tmp_path,
        with_function("handler: h.h\ndescription: 'x ${self:custom.m}'", top="custom: {m: {a: 1}}"),
    )
    assert error.key_path == "functions.hello.description"
    assert "${self:custom.m} is a mapping" in error.message


def test_references_resolve_through_other_references(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        custom:
          first: ${self:custom.second}
          second: ${self:custom.third}-suffix
          third: ${env:BASE, 'base'}
          sizes: {dev: 256, prod: 2048}
          size: ${self:custom.sizes.${sls:stage}}
          alias: ${self:custom.sizes}
        functions:
          hello:
            handler: handler.hello
            memorySize: ${self:custom.size}
            description: ${self:custom.first}
            timeout: ${self:custom.alias.dev}
        """,
        {"stage": "prod"},
    )
    assert hello(spec).description == "base-suffix"
    assert hello(spec).memory_size == 2048
    assert hello(spec).timeout == 256 / 1  # a value reached through a reference to a mapping
    assert spec.raw["custom"]["alias"] == {"dev": 256, "prod": 2048}


def test_a_cycle_is_an_error_naming_the_key_paths(tmp_path: Path) -> None:
    error = fails(
        tmp_path,
        """
        service: demo
        custom:
          a: ${self:custom.b}
          b: x-${self:custom.a}
        functions:
          hello: {handler: handler.hello}
        """,
    )
    assert error.key_path == "custom.a"
    assert error.message == "circular variable reference: custom.a -> custom.b -> custom.a"


def test_a_stage_defined_by_itself_is_a_cycle(tmp_path: Path) -> None:
    error = fails(tmp_path, MINIMAL.replace("name: aws", "name: aws\n  stage: ${sls:stage}"))
    assert error.key_path == "provider.stage"
    assert "circular variable reference" in error.message


def test_a_missing_env_variable_without_default_is_an_error(tmp_path: Path) -> None:
    error = fails(tmp_path, with_function("handler: h.h\nenvironment: {KEY: '${env:FOO}'}"))
    assert error.key_path == "functions.hello.environment.KEY"
    assert "${env:FOO}" in error.message
    assert "environment variable FOO is not set and no default was given" in error.message


def test_missing_opt_and_self_values_without_default_are_errors(tmp_path: Path) -> None:
    error = fails(tmp_path, with_function("handler: h.h\ndescription: ${opt:color}"))
    assert error.key_path == "functions.hello.description"
    assert "option --color was not given and no default was given" in error.message
    error = fails(tmp_path, with_function("handler: h.h\ndescription: ${self:custom.nope}"))
    assert "custom.nope is not set in serverless.yml and no default was given" in error.message


def test_file_variables_read_yaml_and_json_relative_to_the_service(tmp_path: Path) -> None:
    service = tmp_path / "svc"
    write(service, "memory: 768\nnested:\n  stage: ${sls:stage}\n", "config/common.yml")
    (service / "env.json").write_text(json.dumps({"prod": {"LEVEL": "warn"}, "n": 3}))
    write(
        service,
        """
        service: demo
        custom: ${file(./config/common.yml)}
        functions:
          hello:
            handler: handler.hello
            memorySize: ${file(./config/common.yml):memory}
            environment: ${file(./env.json):${sls:stage}}
            description: ${file(./config/common.yml):nested.stage}
            timeout: ${file(env.json):n}
        """,
    )
    spec = load_service(service, {"stage": "prod"}, {})
    assert spec.raw["custom"] == {"memory": 768, "nested": {"stage": "prod"}}
    assert hello(spec).memory_size == 768
    assert hello(spec).environment == {"LEVEL": "warn"}
    assert hello(spec).description == "prod"
    assert hello(spec).timeout == 3


def test_a_file_including_itself_is_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, "again: ${file(./loop.yml)}\n", "loop.yml")
    error = fails(tmp_path, with_function("handler: h.h", top="custom: ${file(./loop.yml)}"))
    assert error.key_path == "custom"
    assert error.message == "circular variable reference: ./loop.yml includes itself"


def test_a_missing_file_falls_back_to_the_default_or_fails(tmp_path: Path) -> None:
    text = with_function("handler: h.h\ndescription: \"${file(./nope.yml):x, 'fallback'}\"")
    assert hello(load(tmp_path, text)).description == "fallback"
    error = fails(tmp_path, with_function("handler: h.h\ndescription: ${file(./nope.yml)}"))
    assert error.key_path == "functions.hello.description"
    assert "file ./nope.yml does not exist" in error.message


def test_a_key_missing_from_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text('{"a": 1}')
    error = fails(tmp_path, with_function("handler: h.h\ndescription: ${file(./c.json):b}"))
    assert "b is not set in ./c.json" in error.message


def test_javascript_files_are_not_run(tmp_path: Path) -> None:
    (tmp_path / "c.js").write_text("module.exports = {}")
    error = fails(tmp_path, with_function("handler: h.h\ndescription: ${file(./c.js)}"))
    assert "does not run JavaScript" in error.message


@pytest.mark.parametrize("variable", ["${ssm:/prod/db-password}", "${cf:other-stack.Url}"])
def test_aws_only_sources_are_not_supported_offline(tmp_path: Path, variable: str) -> None:
    error = fails(tmp_path, with_function(f"handler: h.h\nenvironment: {{K: '{variable}'}}"))
    assert error.key_path == "functions.hello.environment.K"
    assert "is not supported offline" in error.message
    assert variable in error.message


def test_params_are_looked_up_for_the_stage_then_default(tmp_path: Path) -> None:
    text = with_function(
        "handler: h.h\nenvironment: {DOMAIN: '${param:domain}', LEVEL: '${param:level}'}",
        top="params:\n  prod: {domain: example.com}\n  default: {domain: localhost, level: debug}",
    )
    assert hello(load(tmp_path, text, {"stage": "prod"})).environment == {
        "DOMAIN": "example.com",
        "LEVEL": "debug",
    }
    assert hello(load(tmp_path, text)).environment["DOMAIN"] == "localhost"


# The idiom of most of the Serverless Framework's examples (aws-python-rest-api-with-dynamodb).
EXAMPLES_IDIOM = with_function(
    """
    handler: h.h
    environment:
      TABLE: ${self:service}-${opt:stage, self:provider.stage}
      ARN: arn:aws:dynamodb:${opt:region, self:provider.region}:*:table/x
      SELF: ${self:provider.stage}/${self:provider.region}
      SLS: ${sls:stage}
      AWS: ${aws:region}/${aws:accountId}
    """,
    top="provider:\n  name: aws",
)


def test_unset_provider_stage_and_region_read_as_dev_and_us_east_1(tmp_path: Path) -> None:
    spec = load(tmp_path, EXAMPLES_IDIOM)
    assert (spec.stage, spec.region) == ("dev", "us-east-1")
    assert hello(spec).environment == {
        "TABLE": "demo-dev",
        "ARN": "arn:aws:dynamodb:us-east-1:*:table/x",
        "SELF": "dev/us-east-1",
        "SLS": "dev",
        "AWS": "us-east-1/000000000000",
    }


def test_options_win_over_provider_but_self_reads_the_file(tmp_path: Path) -> None:
    spec = load(tmp_path, EXAMPLES_IDIOM, {"stage": "prod", "region": "eu-west-1"})
    assert (spec.stage, spec.region) == ("prod", "eu-west-1")
    assert hello(spec).name == "demo-prod-hello"
    # As in the framework, ${self:provider.stage} is the file's value, not --stage.
    assert hello(spec).environment == {
        "TABLE": "demo-prod",
        "ARN": "arn:aws:dynamodb:eu-west-1:*:table/x",
        "SELF": "dev/us-east-1",
        "SLS": "prod",
        "AWS": "eu-west-1/000000000000",
    }


def test_provider_stage_and_region_written_in_the_file_are_used(tmp_path: Path) -> None:
    text = EXAMPLES_IDIOM.replace("name: aws", "name: aws\n  stage: qa\n  region: ap-south-1")
    spec = load(tmp_path, text)
    assert (spec.stage, spec.region) == ("qa", "ap-south-1")
    assert hello(spec).environment["SELF"] == "qa/ap-south-1"
    assert hello(spec).environment["AWS"] == "ap-south-1/000000000000"
    assert hello(spec).environment["ARN"] == "arn:aws:dynamodb:ap-south-1:*:table/x"


def test_a_region_from_a_variable_gives_aws_region(tmp_path: Path) -> None:
    text = with_function(
        "handler: h.h\ndescription: ${aws:region}",
        top="provider:\n  region: ${env:REGION, 'eu-north-1'}",
    )
    assert hello(load(tmp_path, text)).description == "eu-north-1"
    spec = load(tmp_path, text, env={"REGION": "ca-central-1"})
    assert (spec.region, hello(spec).description) == ("ca-central-1", "ca-central-1")


def test_an_unknown_aws_variable_is_a_clear_error(tmp_path: Path) -> None:
    error = fails(tmp_path, with_function("handler: h.h\ndescription: ${aws:partition}"))
    assert error.key_path == "functions.hello.description"
    assert "faasbox knows ${aws:region} and ${aws:accountId}" in error.message


@pytest.mark.parametrize(
    ("options", "key_path"),
    [({"region": "Mars 1"}, "--region"), ({}, "provider.region")],
)
def test_a_region_not_shaped_like_one_is_refused(
    tmp_path: Path, options: dict[str, str], key_path: str
) -> None:
    text = MINIMAL.replace("name: aws", "name: aws\n  region: 'Mars 1'")
    error = fails(tmp_path, text, options)
    assert error.key_path == key_path
    assert "expected a region such as us-east-1" in error.message


def test_cli_params_win_over_the_files_params(tmp_path: Path) -> None:
    text = with_function(
        "handler: h.h\nenvironment: {DOMAIN: '${param:domain}', LEVEL: '${param:level}'}",
        top="params:\n  prod: {domain: example.com}\n  default: {domain: localhost, level: debug}",
    )
    path = write(tmp_path, text)
    spec = load_service(path, {"stage": "prod"}, {}, params={"domain": "cli.example"})
    assert hello(spec).environment == {"DOMAIN": "cli.example", "LEVEL": "debug"}
    spec = load_service(path, {}, {}, params={"level": "info"})
    assert hello(spec).environment == {"DOMAIN": "localhost", "LEVEL": "info"}


def test_a_param_only_given_on_the_command_line(tmp_path: Path) -> None:
    text = with_function("handler: h.h\ndescription: ${param:who}")
    spec = load_service(write(tmp_path, text), {}, {}, params={"who": "ops"})
    assert hello(spec).description == "ops"


def test_a_missing_param_is_a_clear_error(tmp_path: Path) -> None:
    text = with_function("handler: h.h\ndescription: ${param:who}", top="params: {}")
    error = fails(tmp_path, text, {"stage": "prod"})
    assert error.key_path == "functions.hello.description"
    assert (
        "cannot resolve ${param:who}: parameter who is not set by --param, in params.prod or "
        "params.default and no default was given" in error.message
    )


def test_cloudformation_substitutions_and_tags_are_left_alone(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        functions:
          hello: {handler: handler.hello}
        resources:
          Resources:
            Bucket:
              Type: AWS::S3::Bucket
              Properties:
                BucketName: !Sub '${AWS::StackName}-${self:service}-data'
                Arn: !GetAtt Other.Arn
                Name: !Ref Other
        """,
    )
    properties = spec.raw["resources"]["Resources"]["Bucket"]["Properties"]
    assert properties == {
        "BucketName": {"Fn::Sub": "${AWS::StackName}-demo-data"},
        "Arn": {"Fn::GetAtt": ["Other", "Arn"]},
        "Name": {"Ref": "Other"},
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${env:FOO", "missing its closing"),
        ("${env:FOO, bare}", "quote a literal default"),
    ],
)
def test_malformed_variables_are_errors(tmp_path: Path, value: str, expected: str) -> None:
    error = fails(tmp_path, with_function(f"handler: h.h\ndescription: '{value}'"))
    assert error.key_path == "functions.hello.description"
    assert expected in error.message


def test_scalars_are_read_as_yaml_1_2_like_the_serverless_framework(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        with_function(
            "handler: h.h\nenvironment: {A: on, B: yes, C: 12:30, D: 2024-01-01, E: 0x10, F: 1e3}"
        ),
    )
    assert hello(spec).environment == {
        "A": "on",
        "B": "yes",
        "C": "12:30",
        "D": "2024-01-01",
        "E": "16",
        "F": "1000",
    }


# -- validation errors ---------------------------------------------------------------------


def test_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = fails(tmp_path, "service: demo\nfunctions:\n  hello:\n    handler: [unclosed\n")
    assert error.key_path == ""
    assert "invalid YAML at line 5" in error.message


@pytest.mark.parametrize(
    ("text", "got"),
    [("- a\n- b\n", "got a list"), ("", "got an empty file"), ("just text\n", "got 'just text'")],
)
def test_the_top_level_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    error = fails(tmp_path, text)
    assert "expected a mapping (service, provider, functions)" in error.message
    assert got in error.message


def test_service_is_required(tmp_path: Path) -> None:
    error = fails(tmp_path, "functions:\n  hello: {handler: h.h}\n")
    assert error.key_path == "service"
    assert "is missing; expected the service name" in error.message


def test_a_service_name_must_be_letters_digits_and_dashes(tmp_path: Path) -> None:
    error = fails(tmp_path, MINIMAL.replace("service: demo", "service: my service"))
    assert error.key_path == "service"
    assert "got 'my service'" in error.message


def test_functions_are_required(tmp_path: Path) -> None:
    error = fails(tmp_path, "service: demo\n")
    assert error.key_path == "functions"
    assert "is missing; expected a mapping of functions" in error.message


def test_a_function_must_be_a_mapping(tmp_path: Path) -> None:
    error = fails(tmp_path, "service: demo\nfunctions:\n  hello: handler.hello\n")
    assert error.key_path == "functions.hello"
    assert error.message == "expected a mapping with at least a handler, got 'handler.hello'"


def test_a_function_needs_a_handler(tmp_path: Path) -> None:
    error = fails(tmp_path, with_function("memorySize: 256"))
    assert error.key_path == "functions.hello.handler"
    assert "is missing; expected 'module.function'" in error.message


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("handler: hello", "expected 'module.function' for a Python function"),
        ("handler: handler.", "expected 'module.function' for a Python function"),
        ("runtime: wasm\nhandler: grey.py", "expected the path of a .wasm file"),
    ],
)
def test_a_handler_must_fit_its_runtime(tmp_path: Path, settings: str, expected: str) -> None:
    error = fails(tmp_path, with_function(settings))
    assert error.key_path == "functions.hello.handler"
    assert expected in error.message


@pytest.mark.parametrize(
    ("value", "got"),
    [("lots", "'lots'"), ("64", "64"), ("20000", "20000"), ("true", "true"), ("1.5", "1.5")],
)
def test_memory_size_must_be_an_integer_in_lambdas_range(
    tmp_path: Path, value: str, got: str
) -> None:
    error = fails(tmp_path, with_function(f"handler: h.h\nmemorySize: {value}"))
    assert error.key_path == "functions.hello.memorySize"
    assert error.message == f"expected an integer between 128 and 10240 (MB), got {got}"


def test_memory_size_as_digits_from_a_variable_is_accepted(tmp_path: Path) -> None:
    spec = load(
        tmp_path, with_function("handler: h.h\nmemorySize: ${env:MEM}"), env={"MEM": "2048"}
    )
    assert hello(spec).memory_size == 2048


def test_provider_memory_size_errors_name_the_provider(tmp_path: Path) -> None:
    error = fails(tmp_path, MINIMAL.replace("name: aws", "name: aws\n  memorySize: lots"))
    assert error.key_path == "provider.memorySize"
    assert "expected an integer between 128 and 10240 (MB)" in error.message


@pytest.mark.parametrize(
    ("value", "got"), [("-1", "-1"), ("0", "0"), ("901", "901"), ("soon", "'soon'")]
)
def test_timeout_must_be_positive_and_at_most_900(tmp_path: Path, value: str, got: str) -> None:
    error = fails(tmp_path, with_function(f"handler: h.h\ntimeout: {value}"))
    assert error.key_path == "functions.hello.timeout"
    assert error.message == (
        f"expected a number of seconds greater than 0 and at most 900, got {got}"
    )


def test_timeout_accepts_fractions_and_the_maximum(tmp_path: Path) -> None:
    assert hello(load(tmp_path, with_function("handler: h.h\ntimeout: 900"))).timeout == 900
    assert hello(load(tmp_path, with_function("handler: h.h\ntimeout: 0.25"))).timeout == 0.25


def test_reserved_concurrency_must_not_be_negative(tmp_path: Path) -> None:
    error = fails(tmp_path, with_function("handler: h.h\nreservedConcurrency: -1"))
    assert error.key_path == "functions.hello.reservedConcurrency"
    assert error.message == "expected an integer >= 0, got -1"
    assert (
        hello(
            load(tmp_path, with_function("handler: h.h\nreservedConcurrency: 0"))
        ).reserved_concurrency
        == 0
    )


@pytest.mark.parametrize(
    ("environment", "key_path", "expected"),
    [
        ("[A, B]", "functions.hello.environment", "expected a mapping of environment variable"),
        ("{A: [1, 2]}", "functions.hello.environment.A", "expected a text, number or boolean"),
        ("{'BAD-NAME': x}", "functions.hello.environment.BAD-NAME", "environment variable name"),
    ],
)
def test_environment_errors(tmp_path: Path, environment: str, key_path: str, expected: str) -> None:
    error = fails(tmp_path, with_function(f"handler: h.h\nenvironment: {environment}"))
    assert error.key_path == key_path
    assert expected in error.message


@pytest.mark.parametrize(
    ("events", "key_path", "expected"),
    [
        ("GET /x", "functions.hello.events", "expected a list of events"),
        ("[{http: GET /a, httpApi: GET /b}]", "functions.hello.events[0]", "exactly one event"),
        ("[http]", "functions.hello.events[0]", "exactly one event"),
        ("[{http: 'FETCH /a'}]", "functions.hello.events[0].http", "expected 'METHOD path'"),
        ("[{http: {path: /a}}]", "functions.hello.events[0].http.method", "expected a string"),
        ("[{http: {path: /a, method: FETCH}}]", "functions.hello.events[0].http.method", "GET"),
        ("[{httpApi: 'GET nope'}]", "functions.hello.events[0].httpApi", "'METHOD /path'"),
        ("[{httpApi: {method: GET}}]", "functions.hello.events[0].httpApi.path", "starting with /"),
    ],
)
def test_event_errors(tmp_path: Path, events: str, key_path: str, expected: str) -> None:
    error = fails(tmp_path, with_function(f"handler: h.h\nevents: {events}"))
    assert error.key_path == key_path
    assert expected in error.message


@pytest.mark.parametrize("runtime", ["ruby3.3", "provided", "python2.7", "java21"])
def test_unsupported_runtimes_are_errors(tmp_path: Path, runtime: str) -> None:
    error = fails(tmp_path, with_function(f"handler: h.h\nruntime: {runtime}"))
    assert error.key_path == "functions.hello.runtime"
    assert f"runtime '{runtime}' is not supported by faasbox" in error.message
    assert "python3.x" in error.message
    assert "wasm" in error.message


def test_an_unsupported_provider_runtime_names_the_provider(tmp_path: Path) -> None:
    error = fails(tmp_path, MINIMAL.replace("name: aws", "name: aws\n  runtime: java21"))
    assert error.key_path == "provider.runtime"


# -- warnings ------------------------------------------------------------------------------


def test_other_python_versions_run_on_this_python_with_a_warning(tmp_path: Path) -> None:
    spec = load(tmp_path, with_function("handler: h.h\nruntime: python3.6"))
    assert hello(spec).runtime == "python3.6"
    assert spec.warnings == [
        f"{tmp_path / 'serverless.yml'}: functions.hello.runtime: python3.6 is not installed; "
        f"running on Python {RUNNING} instead"
    ]


def test_node_functions_load_and_other_node_versions_warn(tmp_path: Path) -> None:
    installed = node.installed_major()
    if not installed:
        pytest.skip("node is not installed")
    spec = load(tmp_path, with_function(f"handler: src/app.main\nruntime: nodejs{installed}.x"))
    assert hello(spec).runtime == f"nodejs{installed}.x" and spec.warnings == []
    other = "18" if installed != "18" else "22"
    spec = load(tmp_path, with_function(f"handler: index.handler\nruntime: nodejs{other}.x"))
    assert spec.warnings == [
        f"{tmp_path / 'serverless.yml'}: functions.hello.runtime: nodejs{other}.x is not "
        f"installed; running on Node.js {installed} instead"
    ]
    error = fails(tmp_path, with_function("handler: index\nruntime: nodejs20.x"))
    assert error.key_path == "functions.hello.handler"
    assert "expected 'file.export' for a Node.js function" in error.message


def test_a_provider_runtime_warning_is_given_once(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        provider: {runtime: python3.7}
        functions:
          a: {handler: h.a}
          b: {handler: h.b}
        """,
    )
    assert len(spec.warnings) == 1
    assert "provider.runtime: python3.7 is not installed" in spec.warnings[0]


def test_the_running_python_version_gives_no_warning(tmp_path: Path) -> None:
    spec = load(tmp_path, with_function(f"handler: h.h\nruntime: python{RUNNING}"))
    assert spec.warnings == []


def test_unknown_and_ignored_top_level_keys_warn_and_are_kept(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        frameworkVersion: '3'
        configValidationMode: error
        useDotenv: true
        package: {individually: true}
        custom: {anything: [1, 2]}
        plugins:
          - serverless-offline
          - serverless-python-requirements
        resources:
          Resources: {Table: {Type: 'AWS::DynamoDB::Table'}}
        mystery: 42
        functions:
          hello: {handler: handler.hello}
        """,
    )
    file = tmp_path / "serverless.yml"
    assert spec.warnings == [
        # serverless-python-requirements' work faasbox does itself: not warned about.
        f"{file}: plugins: faasbox does not run Serverless Framework plugins (serverless-offline)",
        f"{file}: resources: faasbox creates only AWS::SQS::Queue resources; whatever the "
        "functions use from the others (Table) must exist elsewhere",
        f"{file}: mystery: unknown key 'mystery'; faasbox ignores it",
    ]
    assert spec.raw["mystery"] == 42
    assert spec.raw["custom"] == {"anything": [1, 2]}
    assert spec.raw["package"] == {"individually": True}


def test_unknown_provider_and_function_keys_warn_and_deploy_only_ones_do_not(
    tmp_path: Path,
) -> None:
    spec = load(
        tmp_path,
        """
        service: demo
        provider:
          name: aws
          deploymentBucket: {name: my-bucket}
          iam: {role: {statements: []}}
          websocketsApiName: chat
        functions:
          hello:
            handler: handler.hello
            tags: {team: a}
            url: true
        """,
    )
    file = tmp_path / "serverless.yml"
    assert sorted(spec.warnings) == [
        f"{file}: functions.hello.url: faasbox does not support 'url' and ignores it",
        f"{file}: provider.websocketsApiName: faasbox does not support 'websocketsApiName' "
        "and ignores it",
    ]
    assert spec.raw["functions"]["hello"]["url"] is True


def test_another_provider_name_warns(tmp_path: Path) -> None:
    spec = load(tmp_path, MINIMAL.replace("name: aws", "name: google"))
    assert spec.warnings == [
        f"{tmp_path / 'serverless.yml'}: provider.name: faasbox runs functions the AWS Lambda "
        "way; settings meant for 'google' may not apply"
    ]


def test_events_faasbox_does_not_route_are_kept_with_a_warning(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        with_function("handler: h.h\nevents:\n  - websocket: $connect\n  - sns: topic"),
    )
    assert hello(spec).events == [{"websocket": "$connect"}, {"sns": "topic"}]
    assert len(spec.warnings) == 2
    assert (
        "functions.hello.events[0].websocket: faasbox does not route 'websocket'"
        in spec.warnings[0]
    )
    assert "functions.hello.events[1].sns: faasbox does not route 'sns'" in spec.warnings[1]


def test_cloudformation_environment_values_are_dropped_with_a_warning(tmp_path: Path) -> None:
    spec = load(tmp_path, with_function("handler: h.h\nenvironment:\n  TABLE: !Ref Orders\n  A: b"))
    assert hello(spec).environment == {"A": "b"}
    assert spec.warnings == [
        f"{tmp_path / 'serverless.yml'}: functions.hello.environment.TABLE: "
        "{'Ref': 'Orders'} cannot be computed outside AWS; the variable is not set"
    ]


def test_wasm_options_on_a_python_function_warn(tmp_path: Path) -> None:
    spec = load(tmp_path, with_function("handler: h.h\nwasm: {aot: true}"))
    assert len(spec.warnings) == 1
    assert "functions.hello.wasm: only used by runtime wasm" in spec.warnings[0]


def test_a_file_variable_into_the_data_dir_is_refused(tmp_path: Path) -> None:
    from faasbox.registry import Registry

    data_dir = tmp_path / ".faasbox"
    registry = Registry(data_dir)
    (data_dir / "code" / "notes.yml").write_text("secret: s3cr3t\n")
    for target in ("./.faasbox/registry.sqlite3", "./.faasbox/code/notes.yml"):
        error = fails(tmp_path, with_function(f"handler: h.h\ndescription: ${{file({target})}}"))
        assert error.key_path == "functions.hello.description"
        assert f"inside faasbox's data dir ({data_dir.resolve()})" in error.message
    registry.close()


def test_ephemeral_storage_and_network_none(tmp_path: Path) -> None:
    text = with_function("handler: h.h\nephemeralStorage: {size: 2048}\nnetwork: none")
    fn = hello(load(tmp_path, text))
    assert (fn.ephemeral_storage, fn.network) == (2048, "none")
    fn = hello(load(tmp_path, with_function("handler: h.h\nephemeralStorageSize: 1024")))
    assert (fn.ephemeral_storage, fn.network) == (1024, "default")
    assert hello(load(tmp_path, with_function("handler: h.h"))).ephemeral_storage == 512
    error = fails(tmp_path, with_function("handler: h.h\nephemeralStorage: {size: 100}"))
    assert error.key_path == "functions.hello.ephemeralStorage.size"
    error = fails(tmp_path, with_function("handler: h.h\nnetwork: vpc"))
    assert error.key_path == "functions.hello.network"
    assert "expected none" in error.message


def test_faasbox_resources_for_ray_nodes(tmp_path: Path) -> None:
    text = with_function("handler: h.h\nfaasbox: {resources: {CPU: 2, GPU: 0.5, camera: 1}}")
    assert hello(load(tmp_path, text)).resources == {"CPU": 2.0, "GPU": 0.5, "camera": 1.0}
    assert hello(load(tmp_path, with_function("handler: h.h"))).resources == {}
    error = fails(tmp_path, with_function("handler: h.h\nfaasbox: {resources: {GPU: -1}}"))
    assert error.key_path == "functions.hello.faasbox.resources.GPU"
    assert "expected a number >= 0 of GPU" in error.message
    error = fails(tmp_path, with_function("handler: h.h\nfaasbox: {resources: {memory: 1}}"))
    assert "memorySize" in error.message
    error = fails(tmp_path, with_function("handler: h.h\nfaasbox: {resources: [CPU]}"))
    assert error.key_path == "functions.hello.faasbox.resources"
