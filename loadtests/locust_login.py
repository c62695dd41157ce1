"""Locust scenario for the login benchmark (run by login_benchmark.py, not by hand).

LoginUser logs in again and again with seeded accounts; a 503 (shed) is recorded under its own
name so that shedding is counted apart from failures. OtherUser reads with a pre-issued token at
a held rate (constant_throughput), the "other endpoints" whose p99 must not suffer.
"""

from __future__ import annotations

import json
import os
import random

from locust import FastHttpUser, constant, constant_throughput, task
from locust import stats as locust_stats

locust_stats.PERCENTILES_TO_REPORT = [0.50, 0.90, 0.95, 0.975, 0.99, 0.999, 1.0]
locust_stats.PERCENTILES_TO_STATISTICS = [0.95, 0.975, 0.99]

with open(os.environ["BENCH_FIXTURE"]) as fixture_file:
    FIXTURE = json.load(fixture_file)


class LoginUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 30.0
    connection_timeout = 5.0

    @task
    def login(self) -> None:
        account = random.choice(FIXTURE["accounts"])
        with self.client.post("/api/auth/login", json=account, catch_response=True, name="login") as response:
            if response.status_code == 503:
                response.request_meta["name"] = "login shed (503)"
                if not response.headers.get("Retry-After"):
                    response.failure("503 without Retry-After")
                else:
                    response.success()
            elif response.status_code != 200:
                response.failure(f"status {response.status_code}")


class OtherUser(FastHttpUser):
    wait_time = constant_throughput(10)
    network_timeout = 30.0

    def on_start(self) -> None:
        self.token = random.choice(FIXTURE["tokens"])

    @task(3)
    def me(self) -> None:
        self.client.get("/api/users/me", headers={"Authorization": f"Bearer {self.token}"}, name="GET users/me")

    @task(1)
    def ui_config(self) -> None:
        self.client.get("/api/admin/ui-config", name="GET admin/ui-config")
