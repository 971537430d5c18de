"""The bounded password-hashing queue: past PASSWORD_HASH_QUEUE waiting jobs a login is
refused at once with 503 + Retry-After, instead of making every later login wait."""

import asyncio
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.core.passwords import HashQueue
from app.errors import HashQueueFull
from tests.utils import api
from tests.utils.server import running_server

LOGINS = 20
WAIT_S = 5.0


def test_the_queue_takes_workers_plus_waiting_jobs_and_refuses_the_next_at_once() -> None:
    queue = HashQueue(workers=1, waiting=2)
    gate = threading.Event()
    started = threading.Semaphore(0)

    def job(value: int) -> int:
        started.release()
        assert gate.wait(WAIT_S)
        return value

    async def scenario() -> None:
        tasks = [asyncio.ensure_future(queue.run(job, n)) for n in range(3)]
        await asyncio.sleep(0)
        assert await asyncio.to_thread(started.acquire, timeout=WAIT_S)  # one runs, two wait
        assert queue.jobs == 3
        began = time.monotonic()
        with pytest.raises(HashQueueFull):
            await queue.run(job, 99)
        assert time.monotonic() - began < 0.5  # refused at once, not after the others
        assert queue.jobs == 3  # a refused job takes no place

        gate.set()
        assert await asyncio.gather(*tasks) == [0, 1, 2]
        assert queue.jobs == 0
        assert await queue.run(job, 7) == 7  # room again

    asyncio.run(scenario())
    queue.pool.shutdown()


def test_a_cancelled_caller_keeps_its_place_until_its_job_ends() -> None:
    """A disconnected client's bcrypt still runs: it must still count against the queue."""
    queue = HashQueue(workers=1, waiting=0)
    gate = threading.Event()
    started = threading.Event()

    def job() -> None:
        started.set()
        assert gate.wait(WAIT_S)

    async def scenario() -> None:
        task = asyncio.ensure_future(queue.run(job))
        assert await asyncio.to_thread(started.wait, WAIT_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(HashQueueFull):  # the job still runs in the pool's one thread
            await queue.run(job)
        gate.set()

    asyncio.run(scenario())
    queue.pool.shutdown(wait=True)  # the job ends: its place is given back
    assert queue.jobs == 0


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_hash_threads_run_at_a_lower_cpu_priority_than_the_event_loop() -> None:
    """bcrypt yields the cores to the event loop when both want them (a login storm)."""
    queue = HashQueue(workers=1, waiting=0)

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_niceness = niceness()
    assert queue.submit(niceness).result(timeout=5) == min(loop_niceness + 10, 19)
    assert niceness() == loop_niceness  # the caller's own thread is left alone
    queue.pool.shutdown()


def test_the_count_stays_exact_under_many_threads_and_loops() -> None:
    """Jobs submitted from several event loops at once (one per thread) and finished in the
    pool's threads: the count returns to zero and never lets more than capacity in."""
    queue = HashQueue(workers=2, waiting=3)
    seen: list[int] = []

    def job() -> None:
        seen.append(queue.jobs)  # never above capacity, as seen from inside a job
        time.sleep(0.002)

    def loop_thread(_: int) -> tuple[int, int]:
        async def burst() -> tuple[int, int]:
            results = await asyncio.gather(
                *(queue.run(job) for _ in range(25)), return_exceptions=True
            )
            refused = sum(isinstance(r, HashQueueFull) for r in results)
            assert all(r is None or isinstance(r, HashQueueFull) for r in results)
            return len(results) - refused, refused

        return asyncio.run(burst())

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(loop_thread, range(4)))

    assert queue.jobs == 0
    assert sum(done + refused for done, refused in outcomes) == 100
    assert max(seen) <= queue.capacity
    assert sum(done for done, _ in outcomes) >= 5
    assert sum(refused for _, refused in outcomes) > 0
    queue.pool.shutdown()


def test_a_login_storm_past_the_queue_gets_503_at_once_and_health_stays_fast() -> None:
    """One bcrypt thread, two waiting places, a cost of 12 (~0.3 s a check): of 20 logins
    at once most are refused with 503 + Retry-After, none fails with a 500, and the event
    loop keeps answering /health meanwhile."""
    env = {
        "BCRYPT_ROUNDS": "12",
        "PASSWORD_HASH_WORKERS": "1",
        "PASSWORD_HASH_QUEUE": "2",
        "RATE_LIMIT_ENABLED": "false",  # this test is about the queue, not the rate limits
    }
    with running_server(env) as base:
        barrier = threading.Barrier(LOGINS)
        storm_over = threading.Event()

        def attempt(_: int) -> httpx.Response:
            form = {"username": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12}
            barrier.wait()
            return httpx.post(f"{base}{api('/auth/login')}", data=form, timeout=60)

        probe_client = httpx.Client(base_url=base, timeout=10)
        assert probe_client.get("/health").status_code == 200  # connected before the storm

        def health() -> list[float]:
            latencies = []
            while not storm_over.is_set():
                began = time.monotonic()
                assert probe_client.get("/health").status_code == 200
                latencies.append(time.monotonic() - began)
                time.sleep(0.02)
            return latencies

        with ThreadPoolExecutor(LOGINS + 1) as pool:
            probe = pool.submit(health)
            responses = list(pool.map(attempt, range(LOGINS)))
            storm_over.set()
            latencies = probe.result()
        probe_client.close()

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {401, 503}, statuses
    refused = [r for r in responses if r.status_code == 503]
    assert refused, statuses
    assert statuses.count(401) >= 3  # the running one and the waiting ones were answered
    for response in refused:
        assert int(response.headers["retry-after"]) > 0
        assert response.json() == {"detail": HashQueueFull.detail}
    assert latencies
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.2, latencies  # the event loop kept answering
    assert latencies[-1] < 1.5, latencies
