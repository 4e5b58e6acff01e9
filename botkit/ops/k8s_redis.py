"""The event stream's part of the Kubernetes manifests: the Redis URL Secret, an in-cluster Redis
(StatefulSet with a PVC, AOF on, and a Service), and a NetworkPolicy that lets only the bot's pods
reach it. With ``K8sSettings.redis_url`` (a managed Redis) only the Secret is rendered.

Why a Secret for a URL: managed Redis URLs carry a password; the Deployment reads
``BOTKIT_REDIS_URL`` from it, so the password never sits in the Deployment. The rendered
Secret holds the in-cluster URL (no password) or the one given; replace it with
``kubectl create secret generic NAME-redis --from-literal=url=...`` rather than committing a real one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botkit.ops.k8s import K8sSettings

__all__ = ["REDIS_FILENAMES", "redis_manifests", "redis_name", "redis_url"]

REDIS_FILENAMES = ("redis-secret.yaml", "redis-statefulset.yaml", "redis-service.yaml", "networkpolicy.yaml")
_REDIS_PORT = 6379
_REDIS_UID = 999  # the "redis" user of the official redis image


def redis_name(s: K8sSettings) -> str:
    return f"{s.name}-redis"


def redis_url(s: K8sSettings) -> str:
    return s.redis_url or f"redis://{redis_name(s)}.{s.namespace}.svc:{_REDIS_PORT}/0"


def _meta(s: K8sSettings, name: str, component: str) -> str:
    from botkit.ops.k8s import _q

    return (f"metadata:\n  name: {_q(name)}\n  namespace: {_q(s.namespace)}\n  labels:\n"
            f"    app.kubernetes.io/name: {_q(name)}\n    app.kubernetes.io/component: {component}\n"
            f"    app.kubernetes.io/part-of: {_q(s.name)}\n    app.kubernetes.io/managed-by: botkit\n")


def _secret(s: K8sSettings) -> str:
    from botkit.ops.k8s import _header, _q

    return (_header("# Secret: the event stream's Redis URL, read by the bot pods as BOTKIT_REDIS_URL.\n"
                    "# Replace it with your managed Redis URL (it may carry a password) with kubectl,\n"
                    "# never by committing the real one.\n")
            + "apiVersion: v1\nkind: Secret\n" + _meta(s, redis_name(s), "event-stream")
            + f"type: Opaque\nstringData:\n  url: {_q(redis_url(s))}\n")


def _statefulset(s: K8sSettings) -> str:
    from botkit.ops.k8s import _header, _q

    name = redis_name(s)
    return (_header("# StatefulSet: one Redis for the event stream, its data on a PersistentVolumeClaim,\n"
                    "# append-only file on (appendfsync everysec: at most 1 s of acknowledged events lost\n"
                    "# if Redis itself crashes), bounded memory that refuses writes instead of evicting.\n")
            + "apiVersion: apps/v1\nkind: StatefulSet\n" + _meta(s, name, "event-stream")
            + f"""spec:
  serviceName: {_q(name)}
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {_q(name)}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {_q(name)}
        app.kubernetes.io/component: event-stream
        app.kubernetes.io/part-of: {_q(s.name)}
    spec:
      automountServiceAccountToken: false
      # Redis saves the AOF on SIGTERM; give it time.
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: {_REDIS_UID}
        runAsGroup: {_REDIS_UID}
        fsGroup: {_REDIS_UID}
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: redis
          image: {_q(s.redis_image)}
          imagePullPolicy: IfNotPresent
          args: ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                 "--maxmemory", {_q(s.redis_maxmemory)}, "--maxmemory-policy", "noeviction", "--dir", "/data"]
          ports:
            - name: redis
              containerPort: {_REDIS_PORT}
              protocol: TCP
          readinessProbe:
            exec:
              command: ["redis-cli", "ping"]
            periodSeconds: 5
            timeoutSeconds: 2
          livenessProbe:
            tcpSocket:
              port: {_REDIS_PORT}
            periodSeconds: 10
            timeoutSeconds: 3
          resources:
            requests:
              cpu: "100m"
              memory: "256Mi"
            limits:
              memory: "512Mi"
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: data
              mountPath: /data
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests:
            storage: {_q(s.redis_storage)}
""")


def _service(s: K8sSettings) -> str:
    from botkit.ops.k8s import _header, _q

    name = redis_name(s)
    return (_header("# Service: the stable in-cluster address of the event stream's Redis.\n")
            + "apiVersion: v1\nkind: Service\n" + _meta(s, name, "event-stream")
            + f"""spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: {_q(name)}
  ports:
    - name: redis
      port: {_REDIS_PORT}
      targetPort: {_REDIS_PORT}
      protocol: TCP
""")


def _network_policy(s: K8sSettings) -> str:
    from botkit.ops.k8s import _header, _q

    name = redis_name(s)
    return (_header("# NetworkPolicy: only the bot's pods may connect to Redis (the event stream holds\n"
                    "# redacted user messages); everything else in the cluster is refused.\n")
            + "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n" + _meta(s, name, "event-stream")
            + f"""spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: {_q(name)}
  policyTypes: ["Ingress"]
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {_q(s.name)}
      ports:
        - protocol: TCP
          port: {_REDIS_PORT}
""")


def redis_manifests(s: K8sSettings) -> dict[str, str]:
    """The event stream's files: the Secret always; Redis itself unless a managed URL is given."""
    files = {"redis-secret.yaml": _secret(s)}
    if not s.redis_url:
        files |= {"redis-statefulset.yaml": _statefulset(s), "redis-service.yaml": _service(s),
                  "networkpolicy.yaml": _network_policy(s)}
    return files
