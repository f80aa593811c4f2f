"""deploy/docker/Dockerfile against this machine's build (no Docker needed): the runtime stage installs the
Debian packages that provide every shared library `ldd build/bin/*` lists, the build stage installs the
-dev packages of every library the Makefile links, and the image carries all six binaries as non-root."""

import os
import re
import shutil
import subprocess

import pytest

import k8slib as k

DOCKERFILE = os.path.join(k.ROOT, "deploy", "docker", "Dockerfile")
BIN = os.path.join(k.ROOT, "build", "bin")
# In every debian:bookworm-slim image already (essential / required).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


def dockerfile():
    with open(DOCKERFILE) as f:
        return f.read()


def arg_list(name):
    m = re.search(r'^ARG\s+%s="([^"]*)"' % name, dockerfile(), re.M)
    assert m, f"Dockerfile has no ARG {name}=\"...\""
    return set(m.group(1).split())


def stages():
    """[(stage name, text)] of the Dockerfile."""
    parts = re.split(r"^FROM\s+", dockerfile(), flags=re.M)[1:]
    return [(re.match(r"\S+(?:\s+AS\s+(\S+))?", p, re.I).group(1), p) for p in parts]


def need_debian():
    if shutil.which("dpkg-query") is None:
        pytest.fail("dpkg-query not found: these checks map libraries to Debian packages (Debian 12 only)")


def built_binaries():
    missing = [b for b in k.binaries() if not os.access(os.path.join(BIN, b), os.X_OK)]
    assert not missing, f"not built: {missing} (run `make all` first; `make k8s-test` does)"
    return [os.path.join(BIN, b) for b in k.binaries()]


def owner_packages(paths):
    """{path: package} through `dpkg -S` (trying the /usr-merged twin of /lib paths)."""
    out = {}
    for p in paths:
        cands = [p, os.path.realpath(p)]
        cands += [c.replace("/lib/", "/usr/lib/", 1) for c in list(cands) if c.startswith("/lib/")]
        cands += [c.replace("/usr/lib/", "/lib/", 1) for c in list(cands) if c.startswith("/usr/lib/")]
        for c in dict.fromkeys(cands):
            r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if r.returncode == 0:
                out[p] = r.stdout.split(":")[0].strip()
                break
        else:
            raise AssertionError(f"no Debian package owns {p}")
    return out


def depends_closure(roots):
    """Installed packages reachable from roots through Depends and Pre-Depends."""
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Depends}, ${Pre-Depends}\n"],
                       capture_output=True, text=True, check=True)
    graph = {}
    for line in r.stdout.splitlines():
        pkg, deps = line.split("\t", 1)
        alts = [re.findall(r"([a-z0-9][a-z0-9+.-]+)(?::\w+)?(?:\s*\([^)]*\))?", d) for d in deps.split(",")]
        graph[pkg] = [a for a in alts if a]
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for alt in graph.get(p, []):
            installed = [a for a in alt if a in graph]
            todo.extend(installed[:1] or [])
    return seen


def test_all_binaries_copied_and_run_as_non_root():
    text = dockerfile()
    for b in k.binaries():
        assert re.search(rf"\bbuild/bin/{b}\b", text), f"Dockerfile does not copy {b}"
    (build, btext), (runtime, rtext) = stages()[0], stages()[-1]
    assert "make" in btext and " all" in btext, "the build stage runs `make all`"
    assert btext.startswith("debian:${DEBIAN_RELEASE}") and rtext.startswith("debian:${DEBIAN_RELEASE}-slim")
    assert re.search(r"^ARG DEBIAN_RELEASE=bookworm$", text, re.M)
    user = re.findall(r"^USER\s+(\S+)", rtext, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root"), "the runtime stage must end as a non-root USER"
    assert not re.search(r"^HEALTHCHECK", text, re.M), "no HEALTHCHECK: Kubernetes probes instead"
    # the UID the manifests run as is the image's user
    for o in k.render("base"):
        ps = k.pod_spec(o)
        if ps:
            assert str(ps["securityContext"]["runAsUser"]) == user[-1].split(":")[0]


def test_runtime_packages_cover_ldd():
    need_debian()
    runtime = arg_list("RUNTIME_PACKAGES")
    libs = set()
    needed = set()
    for b in built_binaries():
        r = subprocess.run(["ldd", b], capture_output=True, text=True, check=True)
        for line in r.stdout.splitlines():
            m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
            if m:
                libs.add(m.group(1))
        r = subprocess.run(["readelf", "-d", b], capture_output=True, text=True, check=True)
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout))
    owners = owner_packages(sorted(libs))
    # every library a binary names directly comes from a package the Dockerfile names
    direct = {p for lib, p in owners.items() if os.path.basename(lib) in needed}
    assert direct - BASE_PACKAGES <= runtime, f"RUNTIME_PACKAGES lacks {sorted(direct - BASE_PACKAGES - runtime)}"
    # and every library ldd finds is installed with them (their dependencies, or the base image)
    closure = depends_closure(runtime | BASE_PACKAGES)
    missing = {lib: p for lib, p in owners.items() if p not in closure}
    assert not missing, f"libraries the runtime image would lack: {missing}"
    # nothing listed that no binary uses (ca-certificates: libcurl's HTTPS to the channel APIs)
    unused = runtime - set(owners.values()) - {"ca-certificates"}
    assert not unused, f"RUNTIME_PACKAGES lists packages no binary links: {sorted(unused)}"


def test_build_packages_cover_makefile_libraries():
    need_debian()
    with open(os.path.join(k.ROOT, "Makefile")) as f:
        pkgs = re.search(r"^PKGS\s*:=\s*(.+)$", f.read(), re.M).group(1).split()
    build = arg_list("BUILD_PACKAGES")
    pcs = []
    for p in pkgs:
        r = subprocess.run(["pkg-config", "--path", p], capture_output=True, text=True)
        assert r.returncode == 0, f"pkg-config knows no {p}"
        pcs.append(r.stdout.strip())
    owners = owner_packages(pcs)
    assert set(owners.values()) <= build, f"BUILD_PACKAGES lacks {sorted(set(owners.values()) - build)}"
    assert {"build-essential", "pkg-config"} <= build


def test_build_stage_runs_here(tmp_path):
    """The build stage's COPY lines and its `make` RUN, executed on this machine without Docker: the copied
    sources are enough to build, and all six binaries land in the output directory."""
    _, btext = stages()[0]
    text = re.sub(r"\\\n", " ", btext)
    ctx = tmp_path / "src"
    ctx.mkdir()
    for src, dest in re.findall(r"^COPY\s+(?!--)(\S+)\s+(\S+)\s*$", text, re.M):
        s, d = os.path.join(k.ROOT, src), ctx / dest
        if os.path.isdir(s):
            shutil.copytree(s, d, ignore=shutil.ignore_patterns("*.o", "*.d"))
        else:
            if dest.endswith("/"):
                d = d / os.path.basename(src)
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(s, d)
    runs = [r for r in re.findall(r"^RUN\s+(.+)$", text, re.M) if "make" in r]
    assert len(runs) == 1, "one RUN with make in the build stage"
    out = tmp_path / "out"
    cmd = runs[0].replace("/out", str(out))
    r = subprocess.run(["bash", "-ec", cmd], cwd=ctx, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"build stage failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert sorted(os.listdir(out)) == sorted(k.binaries())
