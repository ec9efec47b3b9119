"""The ``locust`` load engine: Brownout's open-loop load spread over Locust's workers.

Locust distributes (its master/worker runner, its messages, its heartbeats); Brownout
generates: every worker runs Brownout's own arrival scheduler and client, so the load
stays open loop (requests start on schedule, latency is measured from the intended send
time, drops are counted) instead of Locust's closed-loop users.

Processes and threads. ``brownout load``/``brownout run`` start Locust's master in their
own process (``master``), on a native thread with its own gevent hub; their asyncio loop
talks to it through a queue and ``call_soon_threadsafe``. Each worker
(``brownout load-worker``, ``worker``) runs Locust's ``WorkerRunner`` on its main thread
and each load on a native thread with its own uvloop loop (``worker_load``). Locust is
imported with ``LOCUST_SKIP_MONKEY_PATCH`` set (``locust_import``): monkey patched, gevent
and asyncio would share one thread and a busy load loop would starve Locust's heartbeats.

Splitting the load (``share``). The master's shape gives one global arrival schedule;
with N workers, worker s sends arrivals s, s + N, s + 2N, ... from a start time on the
master's clock. The shares are the local engine's schedule exactly. When a worker joins
or leaves, a new epoch re-splits the arrivals from a moment ahead.

One set of numbers (``protocol``, ``deltas``, ``coordinator``). Workers report 4 times a
second the window accumulators they filled since their last report (counts and a latency
histogram, on the master's window grid) and, when predictions are checked, the
per-response checks of their answers. The master merges them exactly into the same
windows the steady-state checker judges (``SteadyStateChecker.merge_window``), so the
journal, live view and reports are the same whichever engine ran, plus a per-worker
breakdown. Golden probes and stream probes stay on the master.

Worker loss. A worker is lost when its process exits (local workers), Locust stops
counting it, or it is silent for 3 s; the journal says when and why, and the others take
over its share from 0.2 s later. Below ``min_workers`` the load stops and the run ends
with exit 4 (could not run) after its faults are removed.

Security. Locust's protocol has no authentication: the master listens on 127.0.0.1 unless
told otherwise, and anyone who can reach its port can join and receive the corpus.
"""
