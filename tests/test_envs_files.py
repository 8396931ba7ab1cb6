"""envs/*.yaml cannot be built here (no conda channels), so keep them in step with what is tested:
every pin must equal requirements.txt's, and the simulation env must carry every runtime
dependency of the package."""
import re
import tomllib

import yaml

from conftest import ROOT


def pins(lines):
    out = {}
    for line in lines:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def env_pins(name):
    env = yaml.safe_load((ROOT / "envs" / name).read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return pins(pip)


def test_env_pins_match_requirements():
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    for name in ("sim.yaml", "analysis.yaml"):
        for pkg, ver in env_pins(name).items():
            assert req.get(pkg) == ver, f"envs/{name}: {pkg}=={ver} but requirements.txt pins {req.get(pkg)}"


def test_sim_env_has_every_runtime_dependency():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[ ]", d)[0].lower() for d in deps}
    missing = names - set(env_pins("sim.yaml"))
    assert not missing, f"envs/sim.yaml lacks {sorted(missing)} (pyproject dependencies)"


def test_torch_is_pinned_for_this_machine():
    assert pins((ROOT / "requirements.txt").read_text().splitlines())["torch"] == "2.13.0"
