"""Policy checks on the rendered overlays: probes, limits, non-root, read-only root, rollout, env, Services,
NetworkPolicies, image tags, Secrets documented."""

import os
import re

import pytest

import k8slib as k


def workloads(objs):
    return [o for o in objs if k.pod_spec(o) is not None]


def test_containers_are_locked_down(overlay):
    name, objs = overlay
    for w in workloads(objs):
        ps = k.pod_spec(w)
        where = f"{name}: {w['kind']} {w['metadata']['name']}"
        assert ps.get("automountServiceAccountToken") is False, where
        for c in k.containers(w):
            sc = c.get("securityContext", {})
            psc = ps.get("securityContext", {})
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{where}/{c['name']}: runAsNonRoot"
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            assert uid not in (None, 0), f"{where}/{c['name']}: runAsUser"
            assert sc.get("allowPrivilegeEscalation") is False, f"{where}/{c['name']}: allowPrivilegeEscalation"
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}/{c['name']}: readOnlyRootFilesystem"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}/{c['name']}: capabilities"
            assert not sc.get("privileged"), where
            res = c.get("resources", {})
            for r in ("cpu", "memory"):
                assert r in res.get("requests", {}) and r in res.get("limits", {}), f"{where}/{c['name']}: {r}"
            # tmp is writable although the root is not
            assert any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", [])), f"{where}/{c['name']}: /tmp"


def _mi(q):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", q)
    return int(m.group(1)) * units[m.group(2)]


# Largest loaded VmRSS per binary in MiB, measured with tests/k8s/measure_rss.sh against `make up` (wrk,
# 64 connections, 2 HTTP threads; media-svc with 256 KiB uploads; the gateway, 16 threads, with
# GET /api/v1/customers/{id} through authentication, rate limiting and api_logs). Requests must hold it,
# limits twice it.  inbound-svc: high-water mark after its system tests (2 MiB deliveries, workers).
# The binaries that call the channel providers' public APIs (sends; inbound media downloads).
CHANNEL_CLIENTS = {"inbound-svc", "media-svc"}

MEASURED_LOADED_MIB = {"gateway": 28, "customer-svc": 20, "conversation-svc": 19, "messaging-svc": 19,
                       "media-svc": 42, "inbound-svc": 31}


def test_memory_sized_above_measured_rss(overlay):
    name, objs = overlay
    assert set(MEASURED_LOADED_MIB) == set(k.binaries())
    for d in k.of_kind(objs, "Deployment"):
        b = d["metadata"]["name"]
        res = d["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert _mi(res["requests"]["memory"]) >= MEASURED_LOADED_MIB[b], f"{name}: {b} memory request"
        assert _mi(res["limits"]["memory"]) >= 2 * MEASURED_LOADED_MIB[b], f"{name}: {b} memory limit"
        assert _mi(res["limits"]["memory"]) >= _mi(res["requests"]["memory"])


def test_deployments_have_probes_and_roll_safely(overlay):
    name, objs = overlay
    for d in k.of_kind(objs, "Deployment"):
        where = f"{name}: {d['metadata']['name']}"
        c = d["spec"]["template"]["spec"]["containers"][0]
        port = c["ports"][0]
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", None)):
            assert probe in c, f"{where}: no {probe}"
            get = c[probe]["httpGet"]
            if path:
                assert get["path"] == path, f"{where}: {probe} {get['path']}"
            assert get["port"] in (port["name"], port["containerPort"]), f"{where}: {probe} port"
        rwo = [v for v in d["spec"]["template"]["spec"].get("volumes", []) if "persistentVolumeClaim" in v]
        st = d["spec"]["strategy"]
        if rwo:
            # a ReadWriteOnce volume cannot be held by the old and the new pod on two nodes
            assert st["type"] == "Recreate" and d["spec"]["replicas"] == 1, where
        else:
            assert st["type"] == "RollingUpdate" and st["rollingUpdate"]["maxUnavailable"] == 0, where
        # the binary drains for 10 s and flushes the producer for 5 s after SIGTERM
        assert d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 20, where


def _env_provided(container, configmaps, secrets_ok=True):
    """Names the container gets: its env, and the keys of the ConfigMaps it takes with envFrom."""
    names = {}
    for e in container.get("env", []):
        names[e["name"]] = e
    for ef in container.get("envFrom", []):
        if "configMapRef" in ef:
            cm = configmaps[ef["configMapRef"]["name"]]
            for key in cm.get("data", {}):
                names.setdefault(key, {"name": key, "configMap": cm["metadata"]["name"]})
        if "secretRef" in ef:
            raise AssertionError("secrets are given key by key (secretKeyRef), not whole with envFrom")
    return names


def test_required_env_is_provided(overlay):
    """Every variable a binary's config table marks required is set; with PARLEY_ENV=production, every
    secret too, from a Secret (a secret left at its local default stops the binary)."""
    name, objs = overlay
    cms = {c["metadata"]["name"]: c for c in k.of_kind(objs, "ConfigMap")}
    for w in workloads(objs):
        for c in k.containers(w):
            b = k.binary_of(c)
            assert b in k.binaries(), f"{name}: {w['metadata']['name']}/{c['name']} runs {c.get('command')}"
            env = _env_provided(c, cms)
            table = k.config_table(b)
            production = any(cm["data"].get("PARLEY_ENV") == "production" for cm in cms.values()
                             if any(ef.get("configMapRef", {}).get("name") == cm["metadata"]["name"]
                                    for ef in c.get("envFrom", [])))
            for var, spec in table.items():
                where = f"{name}: {w['metadata']['name']}/{c['name']} ({b}) {var}"
                if spec["required"]:
                    assert var in env, f"{where} is required and not set"
                if spec["secret"] and production:
                    assert var in env, f"{where} is a secret and PARLEY_ENV=production"
                if spec["secret"] and var in env:
                    assert "secretKeyRef" in env[var].get("valueFrom", {}), f"{where} must come from a Secret"
            if w["kind"] == "Deployment":
                port = c["ports"][0]["containerPort"]
                assert env["PORT"].get("value") == str(port), f"{name}: {b} PORT vs containerPort"


def test_url_settings_point_at_services(overlay):
    name, objs = overlay
    cm = k.of_kind(objs, "ConfigMap")[0]["data"]
    svcs = {s["metadata"]["name"]: s for s in k.of_kind(objs, "Service")}
    for b in k.binaries():
        if b == "gateway":
            continue
        url = cm[k.url_var(b)]
        m = re.fullmatch(r"http://([a-z0-9-]+)(?:\.[a-z0-9.-]+)?:(\d+)", url)
        assert m and m.group(1) == b, f"{name}: {k.url_var(b)}={url}"
        assert int(m.group(2)) in [p["port"] for p in svcs[b]["spec"]["ports"]], f"{name}: {url}"


def test_secret_refs_are_documented_templates(overlay):
    """Every Secret key referred to is named and explained in a *.example template; no Secret is rendered."""
    name, objs = overlay
    assert not k.of_kind(objs, "Secret"), f"{name}: renders a Secret (templates only: *.example)"
    documented = {}
    for root, _, files in os.walk(k.K8S):
        for fn in files:
            if fn.endswith(".env.example"):
                secret = "parley-" + fn.removesuffix(".env.example")
                with open(os.path.join(root, fn)) as f:
                    lines = f.read().splitlines()
                keys = {}
                for i, line in enumerate(lines):
                    m = re.match(r"^([A-Za-z0-9_.-]+)=", line)
                    if m:
                        assert i > 0 and lines[i - 1].startswith("#"), f"{fn}: {m.group(1)} has no comment"
                        keys[m.group(1)] = True
                documented[secret] = keys
    for w in workloads(objs):
        for c in k.containers(w):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in documented.get(ref["name"], {}), (
                        f"{name}: {c['name']} uses {ref['name']}/{ref['key']}, not in a *.env.example")


def test_services_select_deployments(overlay):
    name, objs = overlay
    deps = k.of_kind(objs, "Deployment")
    for s in k.of_kind(objs, "Service"):
        sel = s["spec"]["selector"]
        matched = [d for d in deps if sel.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matched) == 1, f"{name}: Service {s['metadata']['name']} selects {len(matched)} Deployments"
        ports = {p["name"]: p["containerPort"] for p in matched[0]["spec"]["template"]["spec"]["containers"][0]["ports"]}
        for p in s["spec"]["ports"]:
            assert p["targetPort"] in ports or p["targetPort"] in ports.values(), f"{name}: {s['metadata']['name']}"
    for pdb in k.of_kind(objs, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        assert any(sel.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in deps), pdb
    for d in deps:
        assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()


def test_images_pinned_in_production(production):
    for w in workloads(production):
        for c in k.containers(w):
            img = c["image"]
            assert "@sha256:" in img or re.search(r":[\w.-]+$", img.split("/")[-1]), f"{img}: no tag"
            assert not img.endswith(":latest"), f"{w['metadata']['name']}: {img}"
            assert c.get("imagePullPolicy") != "Always" or "@sha256:" in img


def _peers_by_app(rule_peers):
    return {p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            for p in rule_peers if "namespaceSelector" not in p and "ipBlock" not in p}


def _policies_for(objs, labels):
    return [n for n in k.of_kind(objs, "NetworkPolicy")
            if n["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
            and all(labels.get(e["key"]) in e["values"] for e in n["spec"]["podSelector"].get("matchExpressions", []))]


def test_network_policies(overlay):
    """Default deny; the gateway only from the ingress controller; each service only from its callers;
    egress to DNS, PostgreSQL, Kafka, the callees, and for inbound-svc the channel APIs on 443."""
    name, objs = overlay
    deps = {d["metadata"]["name"]: d for d in k.of_kind(objs, "Deployment")}
    for w in workloads(objs):
        labels = w["spec"]["template"]["metadata"]["labels"]
        pols = _policies_for(objs, labels)
        assert any(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} and not p["spec"].get("ingress")
                   and not p["spec"].get("egress") for p in pols), f"{name}: {w['metadata']['name']} has no default deny"
    for b, d in deps.items():
        pols = [p for p in _policies_for(objs, d["spec"]["template"]["metadata"]["labels"])
                if p["metadata"]["name"] != "parley-allow-prometheus"]
        ingress = [r for p in pols for r in p["spec"].get("ingress", [])]
        egress = [r for p in pols for r in p["spec"].get("egress", [])]
        from_apps = set().union(*(_peers_by_app(r.get("from", [])) for r in ingress)) - {None}
        ns_peers = [p for r in ingress for p in r.get("from", []) if "namespaceSelector" in p or "ipBlock" in p]
        if b == "gateway":
            assert from_apps == set() and ns_peers, f"{name}: gateway ingress"
            assert all(p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                       == "ingress-nginx" for p in ns_peers), f"{name}: gateway open beyond the ingress controller"
        else:
            assert not ns_peers, f"{name}: {b} reachable from another namespace or address"
            assert from_apps == k.callers(b), f"{name}: {b} admits {sorted(from_apps)}, callers {sorted(k.callers(b))}"
        for r in ingress:
            assert {p["port"] for p in r["ports"]} == {d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]}
        to_apps = set().union(*(_peers_by_app(r.get("to", [])) for r in egress)) - {None}
        assert to_apps == {c for c in k.binaries() if b in k.callers(c)}, f"{name}: {b} egress to {sorted(to_apps)}"
        ports = {p["port"] for r in egress for p in r.get("ports", [])}
        assert {53, 5432, 9092} <= ports, f"{name}: {b} egress ports {ports}"
        open_443 = any(p.get("ipBlock") for r in egress for p in r.get("to", []))
        assert open_443 == (b in CHANNEL_CLIENTS), f"{name}: {b} egress to outside addresses"
        for r in egress:
            if any(p.get("ipBlock") for p in r.get("to", [])):
                assert {p["port"] for p in r["ports"]} == {443}
