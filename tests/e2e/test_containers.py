"""The containers harness itself: engine, base image, hardened containers, the store, and cleanup.

These run real Docker. The fixtures come from the `mlops` pytest plugin; the interruption tests
run a second pytest in a bare folder (no conftest), as another repository would.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
import pytest
from testcontainers.community.minio import MinioContainer
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from apps.waiting import wait_for
from harness.containers.build import ImageSet
from harness.containers.cleanup import remove_kept, remove_session, remove_stale
from harness.containers.containers import hardened, writable
from harness.containers.engine import Engine
from harness.containers.errors import ContainerFailedError
from harness.containers.images import BuiltImage
from harness.containers.runners import run_to_completion
from harness.containers.services import S3Service
from harness.containers.settings import LABEL_KEEP, LABEL_PID, ContainersSettings, settings_from_env

pytestmark = pytest.mark.e2e


def test_base_image_runs_python_311_as_non_root_on_a_read_only_root(
    mlops_docker: Engine, mlops_base_image: str, mlops_containers_settings: ContainersSettings
) -> None:
    script = textwrap.dedent("""\
        import os, sys
        print(sys.version_info[:2], os.getuid())
        try:
            open("/etc/written-by-app", "w")
        except OSError as e:
            print("root filesystem refused the write:", e.errno)
        open("/tmp/scratch", "w").write("ok")
        print("tmp writable")
    """)
    code, logs = run_to_completion(image=mlops_base_image, settings=mlops_containers_settings, network=None,
                                   command=["python", "-c", script], env={}, timeout=120)
    assert code == 0, logs
    assert "(3, 11) 10001" in logs
    assert "root filesystem refused the write: 30" in logs  # EROFS
    assert "tmp writable" in logs


def test_app_images_run_as_a_numeric_non_root_user(mlops_docker: Engine, mlops_images: ImageSet) -> None:
    # runAsNonRoot in Kubernetes can only verify a numeric user.
    for name in ("ml-inference-api", "ml-pipeline", "minio"):
        user = mlops_docker.client.images.get(mlops_images.tag(name)).attrs["Config"]["User"]
        uid = user.split(":", 1)[0]
        assert uid.isdigit() and int(uid) != 0, f"{name}: USER is {user!r}"


def test_a_container_that_exits_instead_of_becoming_ready_fails_fast_with_its_logs(
    mlops_docker: Engine, mlops_base_image: str, mlops_containers_settings: ContainersSettings
) -> None:
    from harness.containers.containers import http_ready, publish_on_loopback

    crashing = writable(DockerContainer(mlops_base_image, **hardened(mlops_containers_settings)))
    crashing.with_command(["python", "-c", "import sys; print('bad config: MODEL_REGISTRY_URI'); sys.exit(2)"])
    publish_on_loopback(crashing, 5000).waiting_for(http_ready(5000, "/readyz", timeout=120))
    with pytest.raises(ContainerFailedError) as caught:
        with crashing:
            pass
    assert "bad config: MODEL_REGISTRY_URI" in str(caught.value)
    assert "exit=2" in str(caught.value)


def test_testcontainers_minio_module_uses_the_local_image_without_pulling(
    mlops_minio_image: BuiltImage, mlops_containers_settings: ContainersSettings
) -> None:
    # The module's own default image tag: it must resolve locally (no registry can be reached).
    with MinioContainer(labels=mlops_containers_settings.labels()) as minio:
        client = minio.get_client()
        client.make_bucket("plain-module")
        client.put_object("plain-module", "hello.txt", io.BytesIO(b"hello"), length=5)
        assert client.get_object("plain-module", "hello.txt").read() == b"hello"


def test_store_is_reachable_from_the_host_and_from_containers_on_the_network(
    mlops_s3: S3Service, mlops_base_image: str, mlops_network: Network, mlops_containers_settings: ContainersSettings
) -> None:
    bucket = mlops_s3.create_bucket("reach-test")
    mlops_s3.client().put_object(Bucket="reach-test", Key="k", Body=b"v")
    assert bucket == "s3://reach-test"
    probe = f"import urllib.request; print(urllib.request.urlopen('{mlops_s3.internal_url}/minio/health/live').status)"
    code, logs = run_to_completion(image=mlops_base_image, settings=mlops_containers_settings,
                                   network=mlops_network, command=["python", "-c", probe], env={}, timeout=120)
    assert code == 0 and "200" in logs, logs
    assert mlops_s3.endpoint_url.startswith("http://127.0.0.1:")


def test_cleanup_removes_only_what_this_harness_left(
    mlops_docker: Engine, mlops_base_image: str, tmp_path: Path
) -> None:
    client = mlops_docker.client
    mine = settings_from_env({"MLOPS_CACHE_DIR": str(tmp_path)})
    # A session whose process is gone (a kill -9): its pid is that of a finished child.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = mine.model_copy(update={"session_id": "deadbeef0000", "pid": int(gone.stdout)})
    live_other = mine.model_copy(update={"session_id": "otherlive000", "pid": os.getppid()})
    created = {}
    try:
        for name, settings in {"mine": mine, "dead": dead, "other": live_other}.items():
            created[name] = client.containers.create(mlops_base_image, ["sleep", "60"],
                                                     labels=settings.labels())
        created["foreign"] = client.containers.create(mlops_base_image, ["sleep", "60"],
                                                      labels={"someone.else": "true"})
        assert any(str(created["dead"].name) in r for r in remove_stale(client, mine))
        assert any(str(created["mine"].name) in r for r in remove_session(client, mine))
        left = {c.id for c in client.containers.list(all=True)}
        assert created["dead"].id not in left and created["mine"].id not in left
        assert created["other"].id in left and created["foreign"].id in left
    finally:
        for c in created.values():
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass


CHILD_TEST = """\
import os
from pathlib import Path

from testcontainers.core.container import DockerContainer

from harness.containers.containers import hardened, running
from apps.waiting import wait_for


def test_blocks_until_interrupted(mlops_docker, mlops_base_image, mlops_containers_settings):
    c = DockerContainer(mlops_base_image, **hardened(mlops_containers_settings)).with_command(["sleep", "600"])
    c.waiting_for(running()).start()  # no `with`: only the session's cleanup may remove it
    ready = Path(os.environ["READY_FILE"])
    ready.with_suffix(".tmp").write_text(c.get_container_id())
    ready.with_suffix(".tmp").replace(ready)  # the parent never reads half an id
    wait_for(lambda: False, what="the parent to interrupt this run", timeout=600)
"""


# The child is a pytest run in a terminal's foreground, where Ctrl-C raises KeyboardInterrupt. A
# run started in the background of a non-interactive shell (a CI script, `cmd &`) inherits SIGINT
# ignored and Python keeps it ignored, so without this the child never saw the parent's Ctrl-C.
AS_TERMINAL_JOB = ("import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "sys.exit(pytest.main(sys.argv[1:]))")


def _child_run(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    (tmp_path / "test_child.py").write_text(CHILD_TEST)
    ready = tmp_path / "ready"
    env = {**os.environ, "READY_FILE": str(ready)}
    child = subprocess.Popen([sys.executable, "-c", AS_TERMINAL_JOB, "-q", "-p", "no:cacheprovider", "--rootdir",
                              str(tmp_path), str(tmp_path / "test_child.py")],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    container_id = wait_for(lambda: ready.read_text() if ready.exists() else None, what="the child run's container",
                            timeout=300, describe=lambda: f"child exit code: {child.poll()}")
    return child, container_id


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_leaves_no_container(
    mlops_docker: Engine, mlops_base_image: str, tmp_path: Path, sig: signal.Signals
) -> None:
    child, container_id = _child_run(tmp_path)
    try:
        child.send_signal(sig)
        out, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:  # it ignored the signal: leave neither it nor its container behind
            child.kill()
            child.communicate(timeout=60)
            mlops_docker.client.containers.get(container_id).remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        mlops_docker.client.containers.get(container_id)
    assert child.returncode != 0, out.decode(errors="replace")


def test_a_killed_run_is_swept_by_the_next_session(
    mlops_docker: Engine, mlops_base_image: str, mlops_containers_settings: ContainersSettings, tmp_path: Path
) -> None:
    child, container_id = _child_run(tmp_path)
    child.kill()  # no cleanup can run: the next session must do it
    child.communicate(timeout=60)
    left = mlops_docker.client.containers.get(container_id)
    assert left.labels[LABEL_PID] == str(child.pid)
    assert state_of_running(left)
    removed = remove_stale(mlops_docker.client, mlops_containers_settings)
    assert any(str(left.name) in r for r in removed)
    with pytest.raises(docker.errors.NotFound):
        mlops_docker.client.containers.get(container_id)


def state_of_running(container: Container) -> bool:
    container.reload()
    return bool(container.attrs["State"]["Running"])


KEEP_TEST = """\
import os
from pathlib import Path


def test_store(mlops_s3):
    with Path(os.environ["IDS_FILE"]).open("a") as f:
        f.write(mlops_s3.container_id + "\\n")
"""


def test_kept_store_is_reused_by_the_next_run_and_removed_by_clean(
    mlops_docker: Engine, mlops_minio_image: BuiltImage, tmp_path: Path
) -> None:
    (tmp_path / "test_keep.py").write_text(KEEP_TEST)
    ids_file = tmp_path / "ids"
    env = {**os.environ, "IDS_FILE": str(ids_file)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
            "--mlops-keep-containers", str(tmp_path / "test_keep.py")]
    kept_before = {c.id for c in mlops_docker.client.containers.list(filters={"label": f"{LABEL_KEEP}=true"})}
    try:
        for _ in range(2):
            done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stdout[-3000:]
        first, second = ids_file.read_text().split()
        assert first == second  # the second run found the kept store instead of starting one
        assert mlops_docker.client.containers.get(first).status == "running"
    finally:
        # Remove only what these runs kept: a store someone kept before stays.
        if kept_before:
            for c in mlops_docker.client.containers.list(all=True, filters={"label": f"{LABEL_KEEP}=true"}):
                if c.id not in kept_before:
                    c.remove(force=True, v=True)
            removed = []
        else:
            removed = remove_kept(mlops_docker.client)
    if not kept_before:
        assert any("mlops-minio-kept" in r for r in removed)
    with pytest.raises(docker.errors.NotFound):
        mlops_docker.client.containers.get(first)


def test_images_cli_reports_what_it_built_or_found(mlops_images: ImageSet) -> None:
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, ["harness", "images", "build"], env={"MLOPS_BASE_IMAGE": "local"})
    assert result.exit_code == 0, result.output
    for name in ("ml-inference-api", "ml-pipeline", "minio"):
        assert name in result.output
    assert "cached" in result.output  # the fixture built them: nothing changed since


def test_privileged_containers_run_with_every_capability_the_host_grants(
    mlops_docker: Engine, mlops_base_image: str
) -> None:
    """kind creates every node privileged; here the VM cannot grant CAP_SYS_RESOURCE, which fails
    any privileged container on Docker 20.10 unless the harness's runtime removes it."""
    try:
        out = mlops_docker.client.containers.run(mlops_base_image, ["sh", "-c", "grep CapEff /proc/self/status"],
                                                 privileged=True, remove=True)
    except docker.errors.APIError as e:
        if mlops_docker.started is None:
            pytest.skip(f"the running dockerd was not started by the harness and refuses privileged containers: {e}")
        raise
    effective = int(out.decode().split()[1], 16)
    cap_sys_admin, cap_net_admin = 21, 12
    assert effective >> cap_sys_admin & 1 and effective >> cap_net_admin & 1, out
