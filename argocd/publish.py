"""Publish a rendered tree to the environment's GitOps repository, with plain git.

    >>> from environments import load_environment
    >>> from argocd.render import render_environment
    >>> env = load_environment("local", {"gitops": {"repo_url": "/tmp/doc-gitops.git"}})
    >>> publish(env, render_environment(env)).changed   # doctest: +SKIP
    True

- One commit per change, naming the env and the source commit; none when nothing changed.
- ``diff`` shows the unified diff a publish would commit and writes nothing anywhere.
- A tree with validation findings is refused before git runs.
- Concurrent publishers never lose a commit: a rejected push fetches the new tip, re-applies
  the tree on it (the tree is the desired state of ``env.gitops.path``) and retries; never a
  force-push.
- The repository URL is passed to git on the command line, never stored: credentials come
  from the URL's environment or git's credential helper, and nothing of ours writes them.
- A local path (``~`` expanded) is a bare repository, created on the first publish.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from argocd.errors import PublishError
from argocd.render import RenderedTree
from argocd.validate import validate_or_raise
from environments.model import Environment

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FALLBACK_IDENTITY = ("mlops-toolkit", "mlops-toolkit@localhost")
MAX_ATTEMPTS = 12
_REJECTED = ("rejected", "fetch first", "non-fast-forward", "failed to update ref", "cannot lock ref", "failed to push")


@dataclass(frozen=True)
class PublishResult:
    env: str
    repo: str  # credentials masked
    branch: str
    path: str
    changed: bool
    commit: str | None  # the new commit, None when nothing changed
    diff: str
    attempts: int


def mask(url: str) -> str:
    """A URL fit for logs and messages: user info replaced."""
    return re.sub(r"(?<=//)[^/@]+@", "***@", url)


def is_local(url: str) -> bool:
    return url.startswith("file://") or ("://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url))


def local_path(url: str) -> Path:
    return Path(os.path.expanduser(url.removeprefix("file://")))


def source_commit(root: Path = PROJECT_ROOT) -> str:
    """This checkout's HEAD, with ``-dirty`` when the working tree has changes."""
    try:
        head = _git(["rev-parse", "HEAD"], cwd=root).strip()
        dirty = bool(_git(["status", "--porcelain", "--untracked-files=no"], cwd=root).strip())
    except PublishError:
        return "unknown"
    return f"{head}-dirty" if dirty else head


def diff(env: Environment, tree: RenderedTree, *, repo_url: str | None = None) -> str:
    """The unified diff publishing ``tree`` would commit ('' when none); writes nothing."""
    url = repo_url or env.gitops.repo_url
    with tempfile.TemporaryDirectory(prefix="mlops-gitops-") as tmp:
        work = _Workspace(Path(tmp), url, env.gitops.branch)
        exists = not is_local(url) or local_path(url).exists()
        work.start(fetch=exists)
        work.apply(tree, env.gitops.path)
        return work.staged_diff(env.gitops.path)


def publish(
    env: Environment,
    tree: RenderedTree,
    *,
    repo_url: str | None = None,
    source: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> PublishResult:
    """Validate, then commit ``tree`` under ``env.gitops.path`` and push it to the branch."""
    if tree.env != env.name:
        raise PublishError(f"tree was rendered for env {tree.env!r}, not {env.name!r}; render {env.name} and retry")
    validate_or_raise(env, tree)
    url = repo_url or env.gitops.repo_url
    branch, path = env.gitops.branch, env.gitops.path
    if is_local(url):
        _ensure_bare(local_path(url), branch)
    source = source or source_commit()
    with tempfile.TemporaryDirectory(prefix="mlops-gitops-") as tmp:
        work = _Workspace(Path(tmp), url, branch)
        work.start(fetch=True)
        for attempt in range(1, max_attempts + 1):
            work.apply(tree, path)
            changes = work.staged_diff(path)
            if not changes:
                return PublishResult(env.name, mask(url), branch, path, False, None, "", attempt)
            commit = work.commit(_message(env, source, work.stat(path)))
            if work.push():
                return PublishResult(env.name, mask(url), branch, path, True, commit, changes, attempt)
            # Someone published first: take their tip and re-apply our tree on top of it.
            time.sleep(random.uniform(0.05, 0.2) * attempt)  # jitter spreads the retries of a race
            work.refresh()
    raise PublishError(
        f"env {env.name}: push to {mask(url)} [{branch}] rejected {max_attempts} times (the branch keeps moving); "
        "nothing was lost, publish again"
    )


def _message(env: Environment, source: str, stat: str) -> str:
    short = source[:12] + ("-dirty" if source.endswith("-dirty") else "")
    return (
        f"{env.name}: render from {short}\n\n"
        f"{stat.strip()}\n\n"
        f"Environment: {env.name}\nSource-Commit: {source}\nPath: {env.gitops.path}\n"
    )


def _ensure_bare(path: Path, branch: str) -> None:
    if path.exists():
        if not (path / "HEAD").is_file() and not (path / ".git").exists():
            raise PublishError(f"gitops repo {path} exists but is not a git repository; pick another gitops.repo_url")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _git(["init", "--quiet", "--bare", f"--initial-branch={branch}", str(path)], cwd=path.parent)


def _git_env() -> dict[str, str]:
    # A copy: git must never prompt (a CLI run would hang), and os.environ stays untouched.
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def _git(args: list[str], *, cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=_git_env(), check=False)
    if result.returncode not in ok_codes:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        shown = " ".join(mask(a) for a in args[:3])
        raise PublishError(f"git {shown}: {mask(detail[-1]) if detail else f'exit {result.returncode}'}")
    return result.stdout


class _Workspace:
    """A throwaway clone of one branch; the URL is passed per command, never stored in config."""

    def __init__(self, root: Path, url: str, branch: str) -> None:
        self.root, self.branch = root / "work", branch
        self.url = str(local_path(url)) if is_local(url) else url
        self.tracking = f"refs/remotes/origin/{branch}"
        self.has_base = False

    def git(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> str:
        return _git(list(args), cwd=self.root, ok_codes=ok_codes)

    def start(self, *, fetch: bool) -> None:
        self.root.mkdir(parents=True)
        self.git("init", "--quiet", f"--initial-branch={self.branch}")
        if fetch:
            self.refresh()

    def refresh(self) -> None:
        heads = self.git("ls-remote", "--heads", self.url, f"refs/heads/{self.branch}")
        if not heads.strip():
            self.has_base = False
            return
        self.git("fetch", "--quiet", "--no-tags", self.url, f"+refs/heads/{self.branch}:{self.tracking}")
        self.git("reset", "--quiet", "--hard", self.tracking)
        self.has_base = True

    def apply(self, tree: RenderedTree, path: str) -> None:
        """Make ``path`` hold exactly the tree (files of an earlier render that are gone are removed)."""
        if self.has_base:
            self.git("reset", "--quiet", "--hard", self.tracking)
        self.git("rm", "-r", "-q", "--ignore-unmatch", "--", path)
        target = self.root / path
        for rel, data in tree.items():
            file = target / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        self.git("add", "--all", "--", path)

    def staged_diff(self, path: str) -> str:
        return self.git("diff", "--cached", "--no-color", "--stat", "--patch", "--", path)

    def stat(self, path: str) -> str:
        return self.git("diff", "--cached", "--no-color", "--shortstat", "--", path)

    def commit(self, message: str) -> str:
        name = self.git("config", "user.name", ok_codes=(0, 1)).strip()
        email = self.git("config", "user.email", ok_codes=(0, 1)).strip()
        identity = (
            []
            if name and email
            else ["-c", f"user.name={FALLBACK_IDENTITY[0]}", "-c", f"user.email={FALLBACK_IDENTITY[1]}"]
        )
        self.git(*identity, "commit", "--quiet", "--no-verify", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def push(self) -> bool:
        """True when the branch took the commit; False when it moved under us (never forced)."""
        result = subprocess.run(
            ["git", "push", "--quiet", "--porcelain", self.url, f"HEAD:refs/heads/{self.branch}"],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=_git_env(),
            check=False,
        )
        if result.returncode == 0:
            return True
        output = f"{result.stdout}\n{result.stderr}"
        if any(marker in output for marker in _REJECTED):
            return False
        detail = result.stderr.strip().splitlines()
        raise PublishError(f"git push to {mask(self.url)}: {mask(detail[-1]) if detail else 'failed'}")
