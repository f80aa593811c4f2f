"""Fixtures for the customer-svc system tests (real PostgreSQL, Kafka and service; see parley_sys.py)."""

import shutil

import pytest

import fake_provider
import parley_sys as ps


@pytest.fixture(scope="session", autouse=True)
def stack_is_up():
    """Fail loudly (never skip) when the stack these tests need is not there."""
    missing = [tool for tool in ("psql", "kcat") if shutil.which(tool) is None]
    assert not missing, f"missing tools on PATH: {missing}"
    assert ps.healthz_ok(timeout=5), f"customer-svc does not answer {ps.CUSTOMER_URL}/healthz (deploy/local/up.sh?)"
    ps.psql("SELECT 1")


@pytest.fixture(scope="session", autouse=True)
def channel_provider():
    """The fake WhatsApp/Telegram provider the stack's services are pointed at; shared when already running."""
    proc = fake_provider.ensure_running()
    yield
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def api():
    return ps.Client()


@pytest.fixture
def kafka():
    """Factory: kafka() marks the customer topics' end offsets now and returns a Consumer from there."""
    for topic in ps.CUSTOMER_TOPICS:
        ps.topic_partitions(topic)  # fails clearly when Kafka or the topics are missing
    return lambda topics=ps.CUSTOMER_TOPICS: ps.Consumer(topics)
