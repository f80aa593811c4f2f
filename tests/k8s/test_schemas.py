"""Every rendered object validates against the Kubernetes (v1.30) or operator CRD schema vendored in
tests/k8s/schemas (strict: unknown fields are errors)."""

import pytest

import k8slib as k


@pytest.mark.parametrize("path", k.KUSTOMIZATIONS)
def test_objects_match_schemas(path):
    errors = []
    for o in k.render(path):
        v = k.validator(o["apiVersion"], o["kind"])
        for e in v.iter_errors(o):
            where = "/".join(str(p) for p in e.absolute_path)
            errors.append(f"{o['kind']} {o['metadata']['name']}: {where}: {e.message[:300]}")
    assert not errors, f"deploy/k8s/{path}:\n" + "\n".join(errors)


def test_validator_rejects_a_typo():
    """The schemas are strict: a misspelt field is an error, not ignored."""
    dep = next(o for o in k.render("base") if o["kind"] == "Deployment")
    import copy
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    assert list(k.validator("apps/v1", "Deployment").iter_errors(bad))
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = {"Mi": 128}
    assert list(k.validator("apps/v1", "Deployment").iter_errors(bad))
