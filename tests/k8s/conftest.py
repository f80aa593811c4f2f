"""tests/k8s: offline checks of the Kubernetes manifests and the container image recipe."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import k8slib  # noqa: E402


@pytest.fixture(scope="session", params=k8slib.OVERLAYS)
def overlay(request):
    """(name, rendered objects) of each overlay."""
    return request.param, k8slib.render("overlays/" + request.param)


@pytest.fixture(scope="session")
def production():
    return k8slib.render("overlays/production")
