"""Image build times: warm (nothing changed), after a code change, and cold (`--cold`).

    .venv/bin/python tests/benchmarks/bench_images.py            # warm + code-change figures
    .venv/bin/python tests/benchmarks/bench_images.py --cold     # also from nothing (slow: debootstrap)

--cold removes only images this harness built (label io.mlops-toolkit.built-by) and uses a fresh
cache folder for the base rootfs; the wheelhouse pool is kept (PyPI download time is the network's,
not the build's) unless --cold-wheels is given too.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from harness.containers.build import ensure_images  # noqa: E402
from harness.containers.engine import start_engine  # noqa: E402
from harness.containers.settings import LABEL_BUILT_BY, OWNER, default_settings  # noqa: E402


def timed(label: str, fn) -> object:
    started = time.monotonic()
    result = fn()
    print(f"{label:<28} {time.monotonic() - started:8.1f} s")
    for image in getattr(result, "images", ()):
        print(f"  {image.name:<24} {'built' if image.built else 'cached':<7} {image.seconds:8.1f} s  {image.tag}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true", help="remove our images and the base cache first")
    parser.add_argument("--cold-wheels", action="store_true", help="with --cold: also download the wheels again")
    args = parser.parse_args()
    settings = default_settings()
    engine = start_engine(settings)
    client = engine.client
    if args.cold:
        for image in client.images.list(filters={"label": f"{LABEL_BUILT_BY}={OWNER}"}):
            for tag in image.tags:
                client.images.remove(tag, force=True)
        cache = Path(tempfile.mkdtemp(prefix="mlops-bench-cache-"))
        if not args.cold_wheels:
            (cache / "wheelhouse").symlink_to(settings.cache_dir / "wheelhouse")
        cold = settings.model_copy(update={"cache_dir": cache})
        try:
            timed("cold build", lambda: ensure_images(client, settings=cold, base_choice="local"))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    timed("warm (no change)", lambda: ensure_images(client, settings=settings, base_choice="local"))
    # A code change, made in a copy of the build inputs (the work tree is never touched).
    with tempfile.TemporaryDirectory(prefix="mlops-bench-repo-") as tmp:
        copy = Path(tmp)
        for name in ("apps", "environments"):
            shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("pyproject.toml", "constraints.txt"):
            shutil.copy2(REPO / name, copy / name)
        (copy / "apps" / "_bench_touch.py").write_text(f"# bench {time.time()}\n")
        timed("after a code change", lambda: ensure_images(client, settings=settings, repo_root=copy,
                                                           base_choice="local"))


if __name__ == "__main__":
    main()
