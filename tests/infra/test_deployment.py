"""The deployment files in infra/ are checked by whatever can run here (see infra/README.md)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"
REPO = INFRA.parent


def _k8s_documents() -> list[tuple[str, dict[str, object]]]:
    docs = []
    for path in sorted((INFRA / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


@pytest.mark.parametrize(("name", "doc"), _k8s_documents(), ids=[n for n, _ in _k8s_documents()])
def test_kubernetes_manifest_is_valid_against_the_schema(name: str, doc: dict[str, object]) -> None:
    kubernetes_validate.validate(doc, "1.30", strict=True)


def test_api_deployment_is_ready_only_when_the_database_is() -> None:
    docs = {n: d for n, d in _k8s_documents()}
    api = docs["30-api.yaml:Deployment/hulei-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    kinds = {n.split(":")[1].split("/")[0] for n in docs}
    assert {"Deployment", "HorizontalPodAutoscaler", "Job", "ConfigMap", "Secret", "Service"} <= kinds


def test_compose_file_parses_and_has_every_part() -> None:
    compose = yaml.safe_load((INFRA / "compose" / "compose.yaml").read_text(encoding="utf-8"))
    assert {"db", "objects", "migrate", "api", "worker", "proxy"} <= set(compose["services"])


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hulei.test")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    crt, pem = tmp / "fullchain.pem", tmp / "privkey.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def test_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), "run scripts/bootstrap: it installs nginx"
    crt, pem = _self_signed(tmp_path)
    site = (INFRA / "nginx" / "hulei.conf").read_text(encoding="utf-8")
    site = site.replace("/etc/hulei/tls/fullchain.pem", str(crt)).replace("/etc/hulei/tls/privkey.pem", str(pem))
    (tmp_path / "hulei.conf").write_text(site, encoding="utf-8")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp_path};\n include {tmp_path}/hulei.conf;\n}}\n",
        encoding="utf-8",
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_nginx_upload_limit_admits_the_largest_photo_the_service_accepts() -> None:
    from backend.core.config import Settings

    limit_mb = int((INFRA / "nginx" / "hulei.conf").read_text().split("client_max_body_size ")[1].split("m;")[0])
    assert limit_mb * 1024 * 1024 >= Settings().media_max_bytes


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not on this machine")
def test_systemd_units_verify(tmp_path: Path) -> None:
    env = tmp_path / "hulei.env"
    env.write_text("DATABASE_URL=sqlite:///tmp/x.db\n", encoding="utf-8")
    units = []
    for unit in sorted((INFRA / "systemd").glob("*.service")):
        text = unit.read_text(encoding="utf-8").replace("/opt/hulei", str(REPO)).replace(
            "/etc/hulei/hulei.env", str(env))
        target = tmp_path / unit.name
        target.write_text(text, encoding="utf-8")
        units.append(str(target))
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False)
    problems = [line for line in result.stderr.splitlines()
                if line.strip() and "hulei" in line and "User=" not in line and "Unknown user" not in line]
    assert problems == [], result.stderr
