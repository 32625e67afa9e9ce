"""Job locks: redis-py's Lock on the real Redis (contenders at the same moment, expiry, a job that outlives
its lock) and the in-process fallback for the embedded one-node default."""
import threading
import uuid

import pytest
import redis

from tickets.locks import LocalJobLock, RedisJobLock

CONTENDERS = 6


@pytest.fixture
def redis_client():
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=10)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"Redis not reachable at 127.0.0.1:6379: {error}")
    prefix = f"test-locks-{uuid.uuid4().hex}:"
    yield client, prefix
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
    client.close()


def contend(locks, name: str) -> list[bool]:
    """Every lock tries `name` at the same moment and holds it until all have tried; returns who got it."""
    start, tried = threading.Barrier(len(locks)), threading.Barrier(len(locks))
    results: list[bool] = [False] * len(locks)

    def node(index: int) -> None:
        start.wait(timeout=30)
        with locks[index].hold(name) as got:
            results[index] = got
            tried.wait(timeout=30)

    threads = [threading.Thread(target=node, args=(i,)) for i in range(len(locks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.redis
def test_redis_contenders_at_the_same_moment_one_wins(redis_client):
    client, prefix = redis_client
    # one client (connection pool) per node, as separate processes would have
    nodes = [RedisJobLock(redis.Redis(host="127.0.0.1", port=6379), prefix=prefix) for _ in range(CONTENDERS)]
    results = contend(nodes, "supervise")
    assert results.count(True) == 1
    assert client.exists(prefix + "supervise") == 0  # the winner released it
    assert contend(nodes, "supervise").count(True) == 1  # and the next round has a winner again


@pytest.mark.redis
def test_redis_lock_key_carries_the_ttl(redis_client):
    client, prefix = redis_client
    with RedisJobLock(client, ttl_seconds=30, prefix=prefix).hold("remind") as got:
        assert got is True
        assert 0 < client.pttl(prefix + "remind") <= 30_000


@pytest.mark.redis
def test_a_job_that_outlives_its_lock_does_not_release_the_next_holder(redis_client):
    client, prefix = redis_client
    slow_node = RedisJobLock(client, ttl_seconds=0.2, prefix=prefix)
    next_node = RedisJobLock(client, ttl_seconds=30, prefix=prefix)
    slow_job = slow_node.hold("callback_due")
    assert slow_job.__enter__() is True
    threading.Event().wait(0.5)  # the TTL ran out while the slow job was still running
    with next_node.hold("callback_due") as next_got:
        assert next_got is True
        token = client.get(prefix + "callback_due")
        slow_job.__exit__(None, None, None)  # the slow job ends: no error, and the next holder's key stays
        assert client.get(prefix + "callback_due") == token
    assert client.exists(prefix + "callback_due") == 0

def test_local_lock_contenders_one_wins_per_name():
    lock = LocalJobLock()
    assert contend([lock] * CONTENDERS, "remind").count(True) == 1
    assert contend([lock] * CONTENDERS, "remind").count(True) == 1
