"""The fakes as processes: `python -m devhost.fakes.<provider>`, the /__control API, and dev run's launcher."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import razorpay
import requests
import stripe
from razorpay.errors import ServerError

from devhost.fakes.launch import LOCAL_CREDENTIALS, start_fakes
from devhost.fakes.receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def fake_process(provider: str, *args: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", f"devhost.fakes.{provider}", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"fake {provider} listening on http://127.0.0.1:"), line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0  # SIGTERM is a clean stop


def test_stripe_as_a_process_is_driven_by_the_sdk_and_the_control_api(webhook_receiver: WebhookReceiver) -> None:
    secret = "whsec_process_test"
    with fake_process("stripe", "--api-key", "sk_test_process", "--webhook-secret", secret) as url:
        control = f"{url}/__control"
        assert requests.post(f"{control}/webhooks", json={"url": webhook_receiver.url}, timeout=5).ok
        client = stripe.StripeClient("sk_test_process", base_addresses={"api": url}, max_network_retries=0)
        intent = client.v1.payment_intents.create(params={"amount": 1000, "currency": "eur"})

        succeeded = requests.post(f"{control}/payment_intents/{intent.id}/succeed", timeout=5)
        assert succeeded.json()["status"] == "succeeded"
        received = webhook_receiver.received[-1]
        event = stripe.Webhook.construct_event(received.body, received.headers["Stripe-Signature"], secret)
        assert (event.type, event.data.object["id"]) == ("payment_intent.succeeded", intent.id)
        log = requests.get(f"{control}/webhooks", timeout=5).json()
        assert [(d["event_type"], d["status"]) for d in log] == [
            ("charge.succeeded", 200),
            ("payment_intent.succeeded", 200),
        ]

        unknown = requests.post(f"{control}/payment_intents/pi_missing/succeed", timeout=5)
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "resource_missing")


def test_razorpay_as_a_process_takes_faults_and_webhook_switches_over_http(webhook_receiver: WebhookReceiver) -> None:
    with fake_process("razorpay", "--key-id", "rzp_test_proc", "--key-secret", "proc-secret") as url:
        control = f"{url}/__control"
        client = razorpay.Client(auth=("rzp_test_proc", "proc-secret"), base_url=url)
        requests.post(f"{control}/faults", json={"route": "POST /v1/orders", "fail_next": 1}, timeout=5)
        with pytest.raises(ServerError):
            client.order.create({"amount": 1000, "currency": "INR"})
        order = client.order.create({"amount": 1000, "currency": "INR"})

        webhooks = {"url": webhook_receiver.url, "hold": True, "duplicates": 1}
        requests.post(f"{control}/webhooks", json=webhooks, timeout=5)
        checkout = requests.post(f"{control}/orders/{order['id']}/pay", json={"outcome": "captured"}, timeout=5)
        assert client.utility.verify_payment_signature(checkout.json()) is True
        assert webhook_receiver.received == []
        requests.post(f"{control}/webhooks/release", json={"order": "reverse"}, timeout=5)
        delivered = [json.loads(r.body)["event"] for r in webhook_receiver.received]
        assert delivered == [
            "order.paid",
            "order.paid",
            "payment.captured",
            "payment.captured",
            "payment.authorized",
            "payment.authorized",
        ]


def test_dev_run_starts_a_fake_only_for_an_unconfigured_provider(tmp_path: Path) -> None:
    fakes = start_fakes(Path(sys.executable), "7071", {"TESTING_STRIPE_SECRET_KEY": "sk_test_mine"}, tmp_path)
    try:
        assert list(fakes.urls) == ["razorpay"]
        env = fakes.env
        assert env["RAZORPAY_API_BASE_URL"] == fakes.urls["razorpay"]
        assert "STRIPE_API_BASE_URL" not in env and "TESTING_STRIPE_SECRET_KEY" not in env
        credentials = LOCAL_CREDENTIALS["razorpay"]
        assert {k: env[k] for k in credentials} == credentials
        client = razorpay.Client(
            auth=(env["TESTING_RAZORPAY_KEY_ID"], env["TESTING_RAZORPAY_KEY_SECRET"]),
            base_url=env["RAZORPAY_API_BASE_URL"],
        )
        assert client.order.create({"amount": 1000, "currency": "INR"})["status"] == "created"
        (proc,) = fakes.processes
    finally:
        fakes.stop()
    assert proc.poll() is not None
    assert "/api/payments/razorpay/webhook" in " ".join(str(a) for a in proc.args)  # type: ignore[union-attr]
