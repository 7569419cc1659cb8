"""A connector whose client package is missing is reported by ``hub validate``, with the one
command installing it.

The missing package is simulated in a subprocess whose import system refuses the package (a
meta path finder in front of the real ones), not by uninstalling it.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

import pytest

from runtime import plugins
from runtime.extras import EXTRA_OF_MODULE, NEEDS, install_command

ROOT = Path(__file__).resolve().parents[3]

# Runs `hub validate FILE` with the packages named in argv[1] (comma-separated) unimportable.
_HIDDEN = """
import importlib.abc, sys

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None

HIDDEN = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Hide())
from hub.cli import main
sys.exit(main(["validate", sys.argv[2]]))
"""

_PIPELINES = {
    "kafka-source": ('[pipeline]\nname = "k"\n[source]\ntype = "kafka"\n'
                     'bootstrap-servers = "localhost:9"\ntopics = ["t"]\nformat = "json"\n'
                     '[sink]\ntype = "blackhole"\n'),
    "kafka-sink": ('[pipeline]\nname = "k"\n[source]\ntype = "datagen"\n'
                   '[sink]\ntype = "kafka"\nbootstrap-servers = "localhost:9"\ntopic = "t"\n'),
    "mysql-source": ('[pipeline]\nname = "m"\n[source]\ntype = "mysql"\nhostname = "h"\n'
                     'username = "u"\ntables = ["db.t"]\n[sink]\ntype = "blackhole"\n'),
}


def _validate_hiding(hidden: str, text: str, tmp_path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "p.toml"
    path.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", _HIDDEN, hidden, str(path)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("pipeline,hidden,extra", [
    ("kafka-source", "confluent_kafka", "kafka"),
    ("kafka-sink", "confluent_kafka", "kafka"),
    ("mysql-source", "pymysql", "mysql"),
])
def test_validate_names_the_missing_package_and_the_command(
        pipeline: str, hidden: str, extra: str, tmp_path: Path) -> None:
    # Sanity: the file is valid when nothing is hidden, so the failure below is the hiding.
    ok = _validate_hiding("nothing-hidden", _PIPELINES[pipeline], tmp_path, ROOT)
    assert ok.returncode == 0, ok.stderr
    done = _validate_hiding(hidden, _PIPELINES[pipeline], tmp_path, ROOT)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert re.fullmatch(rf".*p\.toml:\d+: (source|sink)\.type: the Python package '{hidden}' "
                        rf"is missing: install it with  .*", lines[0]), lines[0]
    command = lines[0].split("install it with  ", 1)[1]
    # From this checkout (an editable install), run here: the checkout's own pip, the
    # checkout folder and an extra that exists.
    assert command == install_command(extra)
    assert shlex.split(command)[1:] == ["install", "-e", f".[{extra}]"], command
    assert extra in _pyproject_extras()


def test_install_command_from_elsewhere_names_the_checkout(tmp_path: Path) -> None:
    done = _validate_hiding("confluent_kafka", _PIPELINES["kafka-sink"], tmp_path, tmp_path)
    command = done.stderr.split("install it with  ", 1)[1].strip()
    words = shlex.split(command)
    assert words[1:] == ["install", "-e", f"{ROOT}[kafka]"], command
    pip = words[0]
    assert pip == "pip" or Path(pip).samefile(Path(sys.executable).parent / "pip")


def _pyproject_extras() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]


def test_every_named_extra_exists_and_provides_its_modules() -> None:
    """The extras the hints name are the pyproject's, and each module is installed by a
    distribution that extra requires (checked against the packages installed here)."""
    extras = _pyproject_extras()
    installed = distribution("cdc-hub").metadata.get_all("Provides-Extra") or []
    providers = packages_distributions()
    pairs = [(n.extra, m) for n in NEEDS.values() for m in n.modules]
    pairs += [(extra, module) for module, extra in EXTRA_OF_MODULE.items()]
    for extra, module in pairs:
        assert extra in extras and extra in installed, (module, extra)
        wanted = {re.split(r"[\[<>=~! ;]", req, maxsplit=1)[0].lower().replace("_", "-")
                  for req in extras[extra]}
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists, f"{module} is not installed here"
        # thriftpy2 comes with happybase; hive_metastore with pyiceberg[hive]
        deps = wanted | {d for w in wanted for d in _requires(w)}
        assert dists & deps, (module, extra, dists, wanted)


def _requires(dist: str) -> set[str]:
    try:
        reqs = distribution(dist).requires or []
    except Exception:  # noqa: BLE001 - not installed: nothing to add
        return set()
    return {re.split(r"[\[<>=~! ;(]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def test_every_plugin_with_needs_is_registered() -> None:
    for kind, name in NEEDS:
        assert name in plugins.available(kind), (kind, name)


_INSTALLED = """
import sys
sys.path[:0] = [sys.argv[1]]
from runtime.extras import install_command
print(install_command("kafka"))
"""


@pytest.mark.parametrize("direct_url", [None, "folder"])
def test_install_command_of_an_installed_package(direct_url: str | None, tmp_path: Path) -> None:
    """Installed (not a checkout): the index name, or the folder it was installed from."""
    site = tmp_path / "site"
    (site / "runtime").mkdir(parents=True)
    for name in ("__init__.py", "extras.py"):
        (site / "runtime" / name).write_text((ROOT / "runtime" / name).read_text())
    dist = site / "cdc_hub-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cdc-hub\nVersion: 0.1.0\n")
    folder = tmp_path / "src folder"
    folder.mkdir()
    if direct_url:
        (dist / "direct_url.json").write_text(
            '{"url": "%s", "dir_info": {}}' % folder.as_uri())
    done = subprocess.run([sys.executable, "-I", "-c", _INSTALLED, str(site)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    words = shlex.split(done.stdout.strip())
    assert words[-2] == "install"
    assert words[-1] == ("cdc-hub[kafka]" if direct_url is None else "src folder[kafka]")


def test_a_missing_extra_error_survives_pickling() -> None:
    import pickle

    from runtime.errors import MissingExtraError

    err = pickle.loads(pickle.dumps(MissingExtraError("confluent_kafka", "kafka")))
    assert (err.module, err.extra) == ("confluent_kafka", "kafka")
    assert str(err).endswith(install_command("kafka"))
