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


NGINX_SITES = [INFRA / "nginx" / "hulei.conf", INFRA / "compose" / "nginx.conf"]


@pytest.mark.parametrize("path", NGINX_SITES, ids=[p.parent.name for p in NGINX_SITES])
def test_nginx_site_passes_nginx_t(tmp_path: Path, path: Path) -> None:
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), "run scripts/bootstrap: it installs nginx"
    crt, pem = _self_signed(tmp_path)
    site = path.read_text(encoding="utf-8").replace("server api:8000;", "server 127.0.0.1:8000;")
    for tls in ("/etc/hulei/tls", "/etc/nginx/tls"):
        site = site.replace(f"{tls}/fullchain.pem", str(crt)).replace(f"{tls}/privkey.pem", str(pem))
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


def _directives(path: Path) -> dict[str, list[str]]:
    """Each simple directive of an nginx file (comments dropped): name -> its arguments, in order."""
    found: dict[str, list[str]] = {}
    text = "\n".join(line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
    for statement in text.replace("{", ";").replace("}", ";").split(";"):
        words = statement.split(maxsplit=1)
        if words:
            found.setdefault(words[0], []).append(words[1].strip() if len(words) > 1 else "")
    return found


@pytest.mark.parametrize("path", NGINX_SITES, ids=[p.parent.name for p in NGINX_SITES])
def test_nginx_body_limit_is_the_longest_body_the_service_reads(path: Path) -> None:
    from backend.core.config import Settings

    settings = Settings()
    [limit] = _directives(path)["client_max_body_size"]
    assert limit.endswith("m") and int(limit[:-1]) * 1024 * 1024 == settings.max_body_bytes()
    assert settings.max_body_bytes() >= settings.media_max_bytes


@pytest.mark.parametrize("path", NGINX_SITES, ids=[p.parent.name for p in NGINX_SITES])
def test_nginx_own_answers_carry_the_security_headers(path: Path) -> None:
    """nginx's 429, 413 and 502 are answers a browser may see too: nosniff, CSP and no-store on them."""
    lines = [line.split("#", 1)[0].split() for line in path.read_text(encoding="utf-8").splitlines()]
    added = [words[1].lower() for words in lines if words[:1] == ["add_header"] and words[-1] == "always;"]
    for header in ("x-content-type-options", "referrer-policy", "x-frame-options", "content-security-policy",
                   "cache-control"):
        assert added.count(header) == 2, header  # the server's, and the 429 location's own


def _seconds(value: str) -> int:
    return int(value[:-1]) * {"s": 1, "m": 60}[value[-1]]


@pytest.mark.parametrize("path", NGINX_SITES, ids=[p.parent.name for p in NGINX_SITES])
def test_nginx_receives_bodies_itself_and_cuts_stalled_clients(path: Path) -> None:
    d = _directives(path)
    # The whole body is in nginx before the API sees it: a slow sender never holds an API place.
    assert d["proxy_request_buffering"] == ["on"]
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout", "keepalive_timeout"):
        [value] = d[timeout]
        assert 5 <= _seconds(value) <= 60, (timeout, value)
    # One address cannot take every connection: a bounded number at once, then problem+json 429.
    [(zone, per_address)] = [v.split() for v in d["limit_conn"]]
    assert any(z.split()[:2] == ["$binary_remote_addr", f"zone={zone}:10m"] for z in d["limit_conn_zone"])
    assert d["limit_conn_status"] == ["429"]
    assert 8 <= int(per_address) <= 256


@pytest.mark.parametrize("path", NGINX_SITES, ids=[p.parent.name for p in NGINX_SITES])
def test_nginx_names_the_client_it_sees_never_one_the_client_claims(path: Path) -> None:
    set_headers = [v.split(maxsplit=1) for v in _directives(path)["proxy_set_header"]]
    headers = dict(set_headers)
    assert len(headers) == len(set_headers)
    # Set to the peer nginx sees, never appended to what the client sent ($proxy_add_x_forwarded_for).
    assert headers["X-Forwarded-For"] == "$remote_addr" and headers["X-Real-IP"] == "$remote_addr"


def test_every_api_start_believes_only_its_own_proxy() -> None:
    """Each deployment names the proxies whose X-Forwarded-For `hulei serve` believes."""
    assert "ENV HULEI_FORWARDED_ALLOW_IPS=127.0.0.1" in (INFRA / "Dockerfile").read_text(encoding="utf-8")
    unit = (INFRA / "systemd" / "hulei-api.service").read_text(encoding="utf-8")
    assert "Environment=HULEI_FORWARDED_ALLOW_IPS=127.0.0.1" in unit  # nginx on the same host
    compose = yaml.safe_load((INFRA / "compose" / "compose.yaml").read_text(encoding="utf-8"))
    proxy_address = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    assert compose["services"]["api"]["environment"]["HULEI_FORWARDED_ALLOW_IPS"] == proxy_address
    config = {n: d for n, d in _k8s_documents()}["10-config.yaml:ConfigMap/hulei-config"]
    assert config["data"]["HULEI_FORWARDED_ALLOW_IPS"]  # type: ignore[index]
    ingress = {n: d for n, d in _k8s_documents()}["30-api.yaml:Ingress/hulei"]
    annotations = ingress["metadata"]["annotations"]  # type: ignore[index]
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"


def test_only_the_ingress_controller_may_reach_the_api_pods() -> None:
    """The API believes X-Forwarded-For from the whole pod range: any other pod could name itself any
    client. A NetworkPolicy admits the ingress controller's namespace alone; the worker admits nobody."""
    docs = {n: d for n, d in _k8s_documents()}
    api_labels = docs["30-api.yaml:Deployment/hulei-api"]["spec"]["template"]["metadata"]["labels"]  # type: ignore[index]
    worker_labels = docs["40-worker.yaml:Deployment/hulei-worker"]["spec"]["template"]["metadata"]["labels"]  # type: ignore[index]
    policies = [d["spec"] for d in docs.values() if d["kind"] == "NetworkPolicy"]

    def selecting(labels: dict[str, str]) -> list[dict]:  # type: ignore[type-arg]
        return [p for p in policies if p["podSelector"]["matchLabels"].items() <= labels.items()
                and "Ingress" in p["policyTypes"]]

    [api] = selecting(api_labels)
    sources = [source for rule in api["ingress"] for source in rule["from"]]
    assert sources and all(set(s) == {"namespaceSelector"} for s in sources), sources
    assert [s["namespaceSelector"]["matchLabels"] for s in sources] == [
        {"kubernetes.io/metadata.name": "ingress-nginx"}]
    assert [p["port"] for rule in api["ingress"] for p in rule["ports"]] == ["http"]
    [worker] = selecting(worker_labels)
    assert worker["ingress"] == []


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


def _k8s_database_url(container: dict, secrets: dict[str, dict[str, str]]) -> str:  # type: ignore[type-arg]
    """The DATABASE_URL a container gets: its env entries win over envFrom, a later envFrom over an earlier."""
    for entry in container.get("env", []):
        if entry["name"] == "DATABASE_URL":
            ref = entry["valueFrom"]["secretKeyRef"]
            return secrets[ref["name"]][ref["key"]]
    found = None
    for source in container.get("envFrom", []):
        name = source.get("secretRef", {}).get("name")
        if name and "DATABASE_URL" in secrets.get(name, {}):
            found = secrets[name]["DATABASE_URL"]
    assert found is not None, container["name"]
    return found


def _database_user(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]


def test_migrations_run_as_the_owner_and_the_api_and_worker_as_a_role_that_owns_nothing() -> None:
    """A table's owner can switch its triggers off (the audit log's guards among them), so the API and
    the worker must not connect as the role the migrations create the tables with."""
    docs = {n: d for n, d in _k8s_documents()}
    secrets = {d["metadata"]["name"]: d["stringData"] for d in docs.values() if d["kind"] == "Secret"}  # type: ignore[index]

    def container(name: str) -> dict:  # type: ignore[type-arg]
        return docs[name]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index,no-any-return]

    migrate = _database_user(_k8s_database_url(container("20-migrate-job.yaml:Job/hulei-migrate"), secrets))
    api = _database_user(_k8s_database_url(container("30-api.yaml:Deployment/hulei-api"), secrets))
    worker = _database_user(_k8s_database_url(container("40-worker.yaml:Deployment/hulei-worker"), secrets))
    assert migrate != api and api == worker
    for name in ("30-api.yaml:Deployment/hulei-api", "40-worker.yaml:Deployment/hulei-worker"):
        refs = [s.get("secretRef", {}).get("name") for s in container(name).get("envFrom", [])]
        assert "hulei-migrate-secrets" not in refs  # the owner's password never reaches them

    compose = yaml.safe_load((INFRA / "compose" / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]

    def compose_url(service: str) -> str:
        url = None
        for env_file in services[service]["env_file"]:  # a later file overrides an earlier one
            for line in (INFRA / "compose" / f"{env_file}.example").read_text(encoding="utf-8").splitlines():
                if line.startswith("DATABASE_URL="):
                    url = line.split("=", 1)[1]
        assert "DATABASE_URL" not in services[service].get("environment", {})
        assert url is not None
        return url

    assert _database_user(compose_url("migrate")) != _database_user(compose_url("api"))
    assert _database_user(compose_url("api")) == _database_user(compose_url("worker"))
    assert all("migrate.env" not in services[s]["env_file"] for s in ("api", "worker"))
