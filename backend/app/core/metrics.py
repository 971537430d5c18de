"""Prometheus metrics: requests per route, and the security events an operator watches."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LOGINS = Counter("auth_logins_total", "Password logins by outcome", ["outcome"])
REFRESH_REUSE = Counter("auth_refresh_reuse_detected_total", "Spent refresh tokens presented")
LOCKOUTS = Counter("auth_lockouts_total", "Accounts locked after failed logins")
