"""Every kustomization renders, and holds what SPEC section 9 and issue 7 ask for."""

import pytest

import k8slib as k


@pytest.mark.parametrize("path", k.KUSTOMIZATIONS)
def test_renders(path):
    objs = k.render(path)
    assert objs, f"deploy/k8s/{path} rendered nothing"
    for o in objs:
        assert o.get("apiVersion") and o.get("kind") and o.get("metadata", {}).get("name"), o


def test_every_binary_has_deployment_service_pdb(overlay):
    name, objs = overlay
    for b in k.binaries():
        for kind in ("Deployment", "Service", "PodDisruptionBudget"):
            assert any(o["metadata"]["name"] == b for o in k.of_kind(objs, kind)), f"{name}: no {kind} {b}"
        dep = next(o for o in k.of_kind(objs, "Deployment") if o["metadata"]["name"] == b)
        assert [k.binary_of(c) for c in dep["spec"]["template"]["spec"]["containers"]] == [b]


def test_hpa_for_the_stateless_binaries_only(overlay):
    name, objs = overlay
    hpas = {o["spec"]["scaleTargetRef"]["name"]: o for o in k.of_kind(objs, "HorizontalPodAutoscaler")}
    # media-svc keeps its files on a ReadWriteOnce volume: it does not scale out
    assert set(hpas) == set(k.binaries()) - {"media-svc"}, f"{name}: HPAs for {sorted(hpas)}"
    deps = {o["metadata"]["name"] for o in k.of_kind(objs, "Deployment")}
    for target, h in hpas.items():
        assert h["spec"]["scaleTargetRef"]["kind"] == "Deployment" and target in deps
        assert 1 <= h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"]
    for d in k.of_kind(objs, "Deployment"):
        if d["metadata"]["name"] in hpas:
            assert "replicas" not in d["spec"], f"{name}: {d['metadata']['name']} sets replicas beside its HPA"


def test_production_scales_and_uses_tls(production):
    for h in k.of_kind(production, "HorizontalPodAutoscaler"):
        assert h["spec"]["minReplicas"] >= 2, h["metadata"]["name"]
    (ing,) = k.of_kind(production, "Ingress")
    hosts = {h for t in ing["spec"].get("tls", []) for h in t["hosts"]}
    assert hosts and all(r["host"] in hosts for r in ing["spec"]["rules"]), "production Ingress without TLS"
    assert k.of_kind(production, "ServiceMonitor"), "production lacks the servicemonitors component"
    cm = k.of_kind(production, "ConfigMap")[0]["data"]
    assert cm["PARLEY_ENV"] == "production"
    assert cm["PARLEY_PUBLIC_URL"].startswith("https://")


def test_ingress_reaches_only_the_gateway(overlay):
    name, objs = overlay
    (ing,) = k.of_kind(objs, "Ingress")
    backends = {p["backend"]["service"]["name"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"gateway"}, f"{name}: Ingress backends {backends}"


def test_media_volume(overlay):
    name, objs = overlay
    (pvc,) = [o for o in k.of_kind(objs, "PersistentVolumeClaim") if o["metadata"]["name"] == "parley-media"]
    dep = next(o for o in k.of_kind(objs, "Deployment") if o["metadata"]["name"] == "media-svc")
    vols = dep["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("persistentVolumeClaim", {}).get("claimName") == "parley-media" for v in vols)
    mount = next(m for m in dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
                 if m["name"] in [v["name"] for v in vols if "persistentVolumeClaim" in v])
    cm = k.of_kind(objs, "ConfigMap")[0]["data"]
    assert cm["PARLEY_MEDIA_DIR"] == mount["mountPath"], f"{name}: PARLEY_MEDIA_DIR is not the volume"


def test_migration_job_covers_every_migrating_binary(overlay):
    name, objs = overlay
    (job,) = [j for j in k.of_kind(objs, "Job") if j["metadata"]["name"] == "parley-migrate"]
    runs = {}
    for c in k.containers(job):
        runs[k.binary_of(c)] = c["command"][1:]
    assert set(runs) == k.migrate_only_binaries(), (
        f"{name}: the migration Job runs {sorted(runs)}, binaries with --migrate-only: "
        f"{sorted(k.migrate_only_binaries())}")
    assert all(args == ["--migrate-only"] for args in runs.values())
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def test_infra_databases_and_topics():
    objs = k.render("infra")
    (cluster,) = k.of_kind(objs, "Cluster")
    dbs = {d["spec"]["name"] for d in k.of_kind(objs, "Database")}
    assert all(d["spec"]["cluster"]["name"] == cluster["metadata"]["name"] for d in k.of_kind(objs, "Database"))
    # the six databases of SPEC section 1, as the local stack names them
    with open(k.os.path.join(k.ROOT, "deploy", "local", "svc.sh")) as f:
        local = set(k.re.findall(r"\becho (parley_\w+)", f.read()))
    assert len(local) == 6 and dbs == local, f"databases {sorted(dbs)} vs local stack {sorted(local)}"
    (kafka,) = k.of_kind(objs, "Kafka")
    pools = k.of_kind(objs, "KafkaNodePool")
    assert "zookeeper" not in kafka["spec"]
    assert {r for p in pools for r in p["spec"]["roles"]} == {"controller", "broker"}  # KRaft
    topics = {t["spec"].get("topicName", t["metadata"]["name"]): t for t in k.of_kind(objs, "KafkaTopic")}
    with open(k.os.path.join(k.ROOT, "deploy", "local", "kafka.sh")) as f:
        text = f.read()
    local_topics = set(k.re.search(r"TOPICS=\((.*?)\)", text, k.re.S).group(1).split())
    assert set(topics) == local_topics and len(local_topics) == 12
    for t in topics.values():
        assert t["spec"]["partitions"] == 3
        assert t["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    # the app's configuration points at these by service name
    cm = k.of_kind(k.render("base"), "ConfigMap")[0]["data"]
    ns = objs[0]["metadata"].get("namespace") or "parley-data"
    assert cm["KAFKA_BROKERS"] == f"{kafka['metadata']['name']}-kafka-bootstrap.{ns}.svc:9092"
    with open(k.os.path.join(k.K8S, "base", "database.env.example")) as f:
        urls = [line.split("=", 1)[1] for line in f if line.strip() and not line.startswith("#")]
    assert all(f"@{cluster['metadata']['name']}-rw.{ns}.svc:5432/" in u for u in urls)
