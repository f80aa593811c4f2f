"""Helpers of the tests/k8s checks: the repository's facts (binaries, config tables, callers) read from
the sources, the kustomize renderer, and the vendored JSON schemas."""

import functools
import json
import os
import re
import shutil
import subprocess

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(ROOT, "deploy", "k8s")
SCHEMAS = os.path.join(os.path.dirname(__file__), "schemas")
OVERLAYS = ["dev", "production"]
# Every directory `kubectl kustomize` must render (the component is rendered through production).
KUSTOMIZATIONS = ["base", "overlays/dev", "overlays/production", "infra"]


# ---------------------------------------------------------------- the repository's facts

@functools.lru_cache(None)
def binaries():
    """SERVICES of the Makefile: the six binaries."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        m = re.search(r"^SERVICES\s*:=\s*(.+)$", f.read(), re.M)
    return m.group(1).split()


def _strip_comments(text):
    """C comments out, string literals (which may hold "//") kept."""
    return re.sub(r'("(?:\\.|[^"\\\n])*")|/\*.*?\*/|//[^\n]*', lambda m: m.group(1) or " ", text,
                  flags=re.S)


def _entries(text):
    """The `{ "NAME", PL_CFG_..., ... }` entries of a pl_cfg_var table body, as lists of top-level fields."""
    out = []
    for m in re.finditer(r'\{\s*"([A-Z0-9_]+)"\s*,\s*PL_CFG_', text):
        depth, i = 0, m.start()
        while True:
            c = text[i]
            depth += c == "{" or c == "("
            depth -= c == "}" or c == ")"
            i += 1
            if depth == 0:
                break
        body = text[m.start() + 1:i - 1]
        fields, depth, cur = [], 0, ""
        for c in body:
            if c in "({":
                depth += 1
            elif c in ")}":
                depth -= 1
            if c == "," and depth == 0:
                fields.append(cur.strip())
                cur = ""
            else:
                cur += c
        fields.append(cur.strip())
        out.append(fields)
    return out


def _vars_from_fields(entries):
    # { name, type, offset, default, min, max, required, secret }
    res = {}
    for f in entries:
        name = f[0].strip('"')
        res[name] = {"default": None if f[3] == "NULL" else f[3].strip('"'),
                     "required": f[6] == "true", "secret": f[7] == "true"}
    return res


@functools.lru_cache(None)
def common_vars():
    with open(os.path.join(ROOT, "common", "include", "parley", "config.h")) as f:
        text = _strip_comments(f.read())
    m = re.search(r"#define\s+PL_CFG_COMMON_VARS\([^)]*\)(.*?)(?:\n\s*\n|#endif)", text, re.S)
    return _vars_from_fields(_entries(m.group(1).replace("\\\n", " ")))


@functools.lru_cache(None)
def config_table(binary):
    """{VAR: {default, required, secret}} of everything the binary reads, from its C sources: the
    pl_cfg_var tables in <binary>/*.c (PL_CFG_COMMON_VARS expanded), or the placeholder's in common/stub.c."""
    src = os.path.join(ROOT, binary)
    texts = []
    for fn in sorted(os.listdir(src)):
        if fn.endswith(".c"):
            with open(os.path.join(src, fn)) as f:
                texts.append(_strip_comments(f.read()))
    text = "\n".join(texts)
    if "pl_cfg_var" not in text and "pl_stub_main" in text:
        with open(os.path.join(ROOT, "common", "stub.c")) as f:
            text = _strip_comments(f.read())
    assert "pl_cfg_var" in text, f"{binary}: no pl_cfg_var table found in {binary}/*.c"
    res = {}
    for m in re.finditer(r"struct\s+pl_cfg_var\s+\w+\s*\[\s*\]\s*=\s*\{", text):
        depth, i = 1, m.end()
        while depth:
            depth += text[i] == "{"
            depth -= text[i] == "}"
            i += 1
        body = text[m.end():i - 1]
        if "PL_CFG_COMMON_VARS" in body:
            res.update(common_vars())
        res.update(_vars_from_fields(_entries(body)))
    assert res, f"{binary}: empty configuration table"
    return res


@functools.lru_cache(None)
def migrate_only_binaries():
    """Binaries that handle --migrate-only: their own sources test for it, or they start through
    pl_service_init() (common/service.c), which does."""
    out = set()
    for b in binaries():
        d = os.path.join(ROOT, b)
        for fn in os.listdir(d):
            if fn.endswith(".c"):
                with open(os.path.join(d, fn)) as f:
                    text = _strip_comments(f.read())
                if '"--migrate-only"' in text or "pl_service_init(" in text:
                    out.add(b)
    return out


def url_var(binary):
    """PARLEY_CUSTOMER_URL for customer-svc, ... (README: the service base URLs)."""
    return "PARLEY_%s_URL" % binary.removesuffix("-svc").upper()


def callers(binary):
    """Who calls the binary over HTTP: the gateway routes to every service, inbound-svc to the services
    (SPEC section 1), and any binary whose config table reads the binary's base URL."""
    if binary == "gateway":
        return set()
    res = {"gateway"} | ({"inbound-svc"} if binary != "inbound-svc" else set())
    res |= {b for b in binaries() if b != binary and url_var(binary) in config_table(b)}
    return res


# ---------------------------------------------------------------- rendering

def kustomize_version(kubectl):
    try:
        out = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True,
                             text=True, timeout=30).stdout
        v = json.loads(out).get("kustomizeVersion", "")
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    m = re.match(r"v?(\d+)\.(\d+)", v)
    return (int(m.group(1)), int(m.group(2))) if m else None


@functools.lru_cache(None)
def kubectl():
    """A kubectl whose kustomize understands components (v4 or later): $KUBECTL, else kubectl on PATH, else
    the one tests/k8s/ensure-kubectl.sh keeps in the cache."""
    cands = [os.environ.get("KUBECTL"), shutil.which("kubectl")]
    cache = os.environ.get("PARLEY_CACHE_DIR", os.path.expanduser("~/.cache/parley"))
    cands.append(os.path.join(cache, "kubectl", "kubectl"))
    for c in cands:
        if c and os.access(c, os.X_OK):
            v = kustomize_version(c)
            if v and v >= (4, 0):
                return c
    raise AssertionError("no kubectl with kustomize >= v4 (Debian 12's kubernetes-client is 1.20 with kustomize "
                         "v2.0.3, which has no components): run tests/k8s/ensure-kubectl.sh or set KUBECTL")


@functools.lru_cache(None)
def render(path):
    """`kubectl kustomize deploy/k8s/<path>` as a list of objects."""
    p = subprocess.run([kubectl(), "kustomize", os.path.join(K8S, path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, f"kubectl kustomize deploy/k8s/{path} failed:\n{p.stderr}"
    return [d for d in yaml.safe_load_all(p.stdout) if d]


def of_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def pod_spec(obj):
    if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        return obj["spec"]["template"]["spec"]
    return None


def containers(obj):
    ps = pod_spec(obj)
    return [] if ps is None else ps.get("initContainers", []) + ps["containers"]


def binary_of(container):
    """The Parley binary a container runs (its command's first word under /usr/local/bin)."""
    cmd = container.get("command") or []
    return os.path.basename(cmd[0]) if cmd and cmd[0].startswith("/usr/local/bin/") else None


# ---------------------------------------------------------------- schemas

def schema_file(api_version, kind):
    group, _, version = api_version.rpartition("/")
    return os.path.join(SCHEMAS, f"{group or 'core'}_{version}_{kind}.json")


@functools.lru_cache(None)
def validator(api_version, kind):
    import jsonschema
    path = schema_file(api_version, kind)
    assert os.path.exists(path), f"no vendored schema for {api_version} {kind} ({path}); see tests/k8s/vendor_schemas.py"
    with open(path) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)
