"""acceptance_tests/docker-compose.yaml, checked without a Docker engine.

Valid against the Compose specification (the schema check-jsonschema ships), every build and
bind-mounted file it names exists here, and the app's environment names are documented.
"""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).parents[2]
COMPOSE_FILE = ROOT / "acceptance_tests" / "docker-compose.yaml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# The images of other projects it names; each of ours is built from a Dockerfile in the repo.
KNOWN_IMAGES = {"postgres:17", "redis:7"}


def compose() -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


def check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    assert CHECK_JSONSCHEMA.exists(), f"{CHECK_JSONSCHEMA}: install the dev extra (check-jsonschema)"
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_valid_against_the_compose_specification() -> None:
    result = check_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_an_unknown_service_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text("services:\n  app:\n    image: x\n    replicaz: 2\n", encoding="utf-8")
    assert check_schema(broken).returncode != 0


def test_no_obsolete_version_key() -> None:
    assert "version" not in compose()


def test_expected_services() -> None:
    services = compose()["services"]
    assert set(services) == {"app", "redis", "db", "db-replica", "acceptance"}
    assert services["app"]["deploy"]["replicas"] == 2


def test_replica_streams_from_the_primary() -> None:
    replica = compose()["services"]["db-replica"]
    assert replica["environment"]["PRIMARY_HOST"] == "db"
    script = (ROOT / "acceptance_tests" / "compose" / "replica.sh").read_text(encoding="utf-8")
    assert "--write-recovery-conf" in script


def test_every_build_context_and_dockerfile_exists() -> None:
    built = 0
    for name, service in compose()["services"].items():
        build = service.get("build")
        if build is None:
            continue
        context = COMPOSE_FILE.parent / build["context"]
        assert context.is_dir(), f"{name}: no build context {context}"
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        built += 1
    assert built >= 1


def test_every_image_is_built_here_or_known() -> None:
    services = compose()["services"]
    built_images = {service["image"] for service in services.values() if "build" in service}
    for name, service in services.items():
        image = service["image"]
        assert image in built_images or image in KNOWN_IMAGES, f"{name}: image {image} comes from nowhere"


def test_every_bind_mounted_file_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: {source} does not exist"


def test_every_depended_on_service_exists() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


@pytest.mark.parametrize("service", ["app", "acceptance"])
def test_environment_names_of_our_images_are_documented(service: str) -> None:
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    documented = {name for page in pages for name in re.findall(r"`([A-Z][A-Z0-9_]+)", page.read_text())}
    names = set(compose()["services"][service]["environment"])
    assert names <= documented, f"not in README.md nor docs/: {sorted(names - documented)}"
