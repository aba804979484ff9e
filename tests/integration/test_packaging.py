"""The collection as users get it: the built tarball, installed into a fresh path, and an EE build context."""
import glob
import subprocess
import tarfile

import pytest

from tests.helpers import ROOT, bin_path

PLUGINS = {"module": ["role_instance_reimage", "operation_status", "deployment_info", "reimage_rollout"],
           "inventory": ["role_instances"], "role": ["rolling_reimage"]}


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    proc = subprocess.run([bin_path("ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return glob.glob(str(out / "azure_classic-cloud_services-*.tar.gz"))[0]


def test_tarball_holds_only_what_users_need(tarball):
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    for needed in ("plugins/modules/role_instance_reimage.py", "plugins/inventory/role_instances.py",
                   "plugins/action/reimage_rollout.py", "roles/rolling_reimage/tasks/main.yml",
                   "playbooks/rolling_reimage.yml", "meta/runtime.yml", "meta/execution-environment.yml",
                   "requirements.txt", "bindep.txt", "extensions/awx/credential_type.yml", "README.md"):
        assert needed in names, needed
    for unwanted in (".venv", ".venv-oldest", "tests/output", ".pytest_cache", "__pycache__", ".git/", ".ci/",
                     "bench/", "collections/"):
        assert not [n for n in names if unwanted in n], unwanted


def test_installed_tarball_documents_every_plugin_and_runs(tarball, emulator, tmp_path):
    path = tmp_path / "collections"
    proc = subprocess.run([bin_path("ansible-galaxy"), "collection", "install", "--force", tarball, "-p", str(path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = emulator.env(ANSIBLE_COLLECTIONS_PATH=str(path))
    for kind, names in PLUGINS.items():
        for name in names:
            doc = subprocess.run([bin_path("ansible-doc"), "-t", kind, "azure_classic.cloud_services." + name],
                                 env=env, capture_output=True, text=True, timeout=120, check=False)
            assert doc.returncode == 0, doc.stderr
            assert "ERROR" not in doc.stderr, doc.stderr
    run = subprocess.run([bin_path("ansible"), "localhost", "-m", "azure_classic.cloud_services.deployment_info",
                          "-a", "cloud_service=contoso-web deployment_slot=production", "-vv"], env=env,
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert run.returncode == 0 and "WorkerRole1_IN_2" in run.stdout, run.stdout + run.stderr
    assert "ansible collection location = %s" % path in run.stdout


def test_execution_environment_context_renders(tarball, tmp_path):
    work = tmp_path / "ee"
    work.mkdir()
    (work / "execution-environment.yml").write_text((ROOT / "tests" / "ee" / "execution-environment.yml").read_text())
    (work / "requirements.yml").write_text("collections:\n  - name: %s\n    type: file\n" % tarball)
    proc = subprocess.run([bin_path("ansible-builder"), "create", "-f", "execution-environment.yml", "--context",
                           str(work / "context")], cwd=str(work), capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # ansible-builder names it after the container runtime it finds (Dockerfile where a docker client exists).
    assert {"Containerfile", "Dockerfile"} & {p.name for p in (work / "context").iterdir()}
    introspect = subprocess.run([bin_path("ansible-builder"), "introspect", "--sanitize", str(ROOT.parent.parent)
                                 if ROOT.parent.name == "azure_classic" else str(ROOT / "tests" / "output" / "collections")],
                                capture_output=True, text=True, timeout=120, check=False)
    assert introspect.returncode == 0, introspect.stderr
    assert "cryptography" in introspect.stdout and "requests" not in introspect.stdout
