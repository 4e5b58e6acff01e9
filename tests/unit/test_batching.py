"""The in-worker micro-batcher: every caller gets its own answer or its batch's error, never a hang."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from botkit.serving.batching import BatchLengthError, MicroBatcher

TIMEOUT_S = 5  # a hang fails the test instead of blocking the suite


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT_S))


class Recorder:
    """A batch function that records the batches it sees; ``slow`` makes the first call block the loop."""

    def __init__(self, fn=lambda xs: [x * 10 for x in xs], slow_s: float = 0.0):
        self.fn, self.slow_s, self.batches = fn, slow_s, []

    def __call__(self, items):
        self.batches.append(list(items))
        if self.slow_s and len(self.batches) == 1:
            time.sleep(self.slow_s)
        return self.fn(items)


@pytest.mark.parametrize("inline", [True, False])
def test_each_caller_gets_its_own_result_in_order(inline):
    rec = Recorder()
    b = MicroBatcher(rec, max_batch_size=64, inline=inline)

    async def main():
        return await asyncio.gather(*(b.submit(i) for i in range(200)))

    assert run(main()) == [i * 10 for i in range(200)]
    seen = [x for batch in rec.batches for x in batch]
    assert seen == list(range(200)), "items reach the model once each, in arrival order"
    assert b.items == 200 and b.batches == len(rec.batches)
    b.close()


def test_concurrent_callers_share_batches_and_respect_the_cap():
    rec = Recorder(slow_s=0.05)
    b = MicroBatcher(rec, max_batch_size=8)

    async def main():
        return await asyncio.gather(*(b.submit(i) for i in range(50)))

    assert run(main()) == [i * 10 for i in range(50)]
    sizes = [len(x) for x in rec.batches]
    assert max(sizes) == 8, sizes
    assert len(rec.batches) < 50, "concurrent callers are batched, not served one by one"
    assert b.mean_batch_size == pytest.approx(50 / len(rec.batches))


def test_a_lone_caller_runs_alone_without_waiting():
    rec = Recorder()
    b = MicroBatcher(rec)

    async def main():
        t0 = time.perf_counter()
        out = await b.submit(3)
        return out, time.perf_counter() - t0

    out, took = run(main())
    assert out == 30 and rec.batches == [[3]]
    assert took < 0.05


@pytest.mark.parametrize("inline", [True, False])
def test_an_exception_in_the_batch_reaches_every_caller_of_that_batch(inline):
    def boom(items):
        raise ValueError(f"bad batch {list(items)}")

    b = MicroBatcher(boom, inline=inline)

    async def main():
        return await asyncio.gather(*(b.submit(i) for i in range(10)), return_exceptions=True)

    out = run(main())
    assert len(out) == 10 and all(isinstance(e, ValueError) for e in out)


def test_a_failing_batch_does_not_poison_the_next_one():
    def fn(items):
        if "bad" in items:
            raise ValueError("bad input")
        return [s.upper() for s in items]

    b = MicroBatcher(fn, max_batch_size=2)

    async def main():
        first = await asyncio.gather(b.submit("bad"), b.submit("x"), b.submit("ok"), return_exceptions=True)
        second = await b.submit("later")
        return first, second

    first, second = run(main())
    assert isinstance(first[0], ValueError) and isinstance(first[1], ValueError)
    assert first[2] == "OK" and second == "LATER"


@pytest.mark.parametrize("returned", [lambda xs: xs[:-1], lambda xs: [*xs, "extra"], lambda xs: iter(())])
@pytest.mark.parametrize("inline", [True, False])
def test_a_length_mismatch_fails_every_caller_instead_of_hanging(returned, inline):
    b = MicroBatcher(lambda xs: returned(list(xs)), inline=inline)

    async def main():
        return await asyncio.gather(*(b.submit(i) for i in range(5)), return_exceptions=True)

    out = run(main())
    assert len(out) == 5 and all(isinstance(e, BatchLengthError) for e in out), out


def test_the_batcher_serves_again_after_a_length_mismatch():
    calls = []

    def fn(xs):
        calls.append(list(xs))
        return [] if len(calls) == 1 else [x + 1 for x in xs]

    b = MicroBatcher(fn)

    async def main():
        with pytest.raises(BatchLengthError):
            await b.submit(1)
        return await b.submit(2)

    assert run(main()) == 3


def test_a_cancelled_caller_is_dropped_and_the_others_still_answered():
    gate = threading.Event()
    rec = Recorder(fn=lambda xs: (gate.wait(1), [x * 10 for x in xs])[1])
    b = MicroBatcher(rec, inline=False)

    async def main():
        first = asyncio.ensure_future(b.submit(0))  # occupies the model
        await asyncio.sleep(0.01)
        waiting = [asyncio.ensure_future(b.submit(i)) for i in (1, 2, 3)]
        await asyncio.sleep(0.01)
        waiting[1].cancel()  # caller 2 gives up while queued
        gate.set()
        results = await asyncio.gather(first, *waiting, return_exceptions=True)
        return results

    results = run(main())
    assert results[0] == 0 and results[1] == 10 and results[3] == 30
    assert isinstance(results[2], asyncio.CancelledError)
    assert [2] not in rec.batches and all(2 not in batch for batch in rec.batches), rec.batches


def test_a_caller_timing_out_leaves_the_batcher_working():
    rec = Recorder(slow_s=0.2)
    b = MicroBatcher(rec, inline=False)

    async def main():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.submit(1), 0.05)
        await asyncio.sleep(0.3)
        return await b.submit(2)

    assert run(main()) == 20


def test_max_batch_size_must_be_positive():
    with pytest.raises(ValueError):
        MicroBatcher(lambda xs: xs, max_batch_size=0)
