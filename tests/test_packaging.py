"""The built wheel carries resources/ and the console scripts, not only the source checkout."""

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

from tests.support.servers import REPO


def test_wheel_installs_with_resources(tmp_path: Path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO)],
                   check=True, capture_output=True, timeout=180)
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "server_stub/_resources/demo_agents.toml" in names
    assert "interaction-server = server_stub.cli:main" in entry_points

    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", str(wheel)], check=True, timeout=180)
    probe = (
        "from server_stub.resources import resource_path; "
        "p = resource_path('demo_agents.toml'); print(p); print(p.read_text()[:2000])"
    )
    # Run from the temp dir so the checkout is not importable: only the installed copy can answer.
    out = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    path, _, text = out.partition("\n")
    assert str(env_dir) in path, f"resource loaded from outside the fresh venv: {path}"
    assert "[[agent]]" in text and 'id = "1001"' in text

    # The console scripts, as installed. The wheel went in without its dependencies (no network),
    # so the fresh venv borrows this environment's: its site-packages directory as a plain path
    # entry, which does not run that directory's .pth files (the checkout's editable install).
    (fresh_site,) = (env_dir / "lib").glob("python*/site-packages")
    (fresh_site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run(
        [str(python), "-c", "import desktop, server_stub; print(desktop.__file__, server_stub.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.count(str(env_dir)) == 2, f"the code did not come from the wheel: {where}"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    for script, says in (("supervisor-view", "supervisor status view"), ("agent-desktop", "usage: agent-desktop"),
                         ("agent-cli", "headless agent"), ("interaction-server", "usage: interaction-server")):
        run = subprocess.run([str(env_dir / "bin" / script), "--help"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, f"{script} --help: exit {run.returncode}\n{run.stderr[-2000:]}"
        assert f"usage: {script}" in run.stdout and says in run.stdout, f"{script} --help said: {run.stdout[:500]}"
