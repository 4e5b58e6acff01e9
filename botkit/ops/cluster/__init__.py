"""``botkit cluster``: many replicas, one durable event stream, on the real parts a team runs.

What runs (all on 127.0.0.1, under one supervisord that restarts whatever dies)::

    client ─► HAProxy :lb_port ──► replica-1 … replica-N (bentoml serve, each its own port)
              (/readyz checks,        │ events: BOTKIT_EVENTS_BACKEND=redis
               L7 retries, weights)   ▼
    Prometheus ◄─ scrapes replicas    Redis (AOF, appendfsync everysec, maxmemory, noeviction)
                  and HAProxy :stats_port/metrics

Python API (for rolling updates, canaries, shadow models, drills)::

    from botkit.ops.cluster import Cluster
    c = Cluster(replicas=3, workers=1, model="shopbot:abc").start()   # blocks until all healthy
    c = Cluster.attach()               # the cluster `botkit cluster up` started ($BOTKIT_HOME/cluster)
    c.lb_url, c.redis_url, c.prometheus_url, c.haproxy_metrics_url
    c.specs                            # [ReplicaSpec(name, port, model, workers)], .url per replica
    c.status()                         # dict: lb_url, redis_url, prometheus_url,
                                       #   replicas [{name, url, port, pid, state, model, healthy,
                                       #              lb_status, weight, workers}], services [...]
    c.set_weight("replica-3", 10)      # HAProxy runtime weight 0..256 (default 100): canary share
    c.drain("replica-2")               # no new requests; in-flight ones finish
    c.ready("replica-2")               # take traffic again
    c.restart_replica("replica-2", model="shopbot:new")  # drain, stop (flush), start on model, ready,
                                       #   wait healthy; the model sticks across later restarts
    c.restart_replica("replica-3", env={"BOTKIT_SHADOW_MODEL": "shopbot:new"})  # settings of that
                                       #   replica alone (ReplicaSpec.env), also sticky
    c.kill_replica("replica-1")        # kill -9 of the whole process group; supervisord restarts it
    c.stop_program("redis"); c.start_program("redis"); c.pid("redis")
    c.stop()                           # everything down; returns pids it had to kill (should be [])

Every process carries ``BOTKIT_CLUSTER_DIR=<folder>`` in its environment, so
``cluster_processes(folder)`` finds exactly this cluster's processes (tests prove ``stop``
leaves none). Drills (kill, redis-down, redis-hang) live in :mod:`botkit.ops.cluster.drills`.
"""

from botkit.ops.cluster.cluster import Cluster, ClusterError, ReplicaSpec, cluster_processes

__all__ = ["Cluster", "ClusterError", "ReplicaSpec", "cluster_processes"]
