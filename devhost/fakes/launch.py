"""Start the fake providers as processes for `python3 -m devhost.dev run`. STDLIB ONLY (dev.py imports it).

A provider gets a fake unless the developer configured it: its base URL or its API key is set in
the environment or in local.settings.json (then the app talks to whatever that names, e.g. a real
Razorpay/Stripe test account). The fakes POST webhooks to the app's routes on the host's port, and
their URL, keys and webhook secrets go into the host's environment so the app and the fake agree.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devhost import services

# Local-only credentials: the fakes accept nothing else, and nothing real accepts these.
LOCAL_CREDENTIALS: dict[str, dict[str, str]] = {
    "razorpay": {
        "TESTING_RAZORPAY_KEY_ID": "rzp_test_localfake0001",
        "TESTING_RAZORPAY_KEY_SECRET": "local_fake_razorpay_key_secret",
        "RAZORPAY_WEBHOOK_SECRET": "local_fake_razorpay_webhook_secret",
    },
    "stripe": {
        "TESTING_STRIPE_SECRET_KEY": "sk_test_localfake000000000000",
        "TESTING_VITE_STRIPE_PUBLIC_KEY": "pk_test_localfake000000000000",
        "STRIPE_WEBHOOK_SECRET": "whsec_localfake000000000000",
    },
}
BASE_URL_VARIABLE = {"razorpay": "RAZORPAY_API_BASE_URL", "stripe": "STRIPE_API_BASE_URL"}
API_KEY_VARIABLE = {"razorpay": "TESTING_RAZORPAY_KEY_ID", "stripe": "TESTING_STRIPE_SECRET_KEY"}
FLAGS = {
    "TESTING_RAZORPAY_KEY_ID": "--key-id",
    "TESTING_RAZORPAY_KEY_SECRET": "--key-secret",
    "RAZORPAY_WEBHOOK_SECRET": "--webhook-secret",
    "TESTING_STRIPE_SECRET_KEY": "--api-key",
    "STRIPE_WEBHOOK_SECRET": "--webhook-secret",
}


@dataclass
class ProviderFakes:
    env: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def describe(self) -> str:
        if not self.urls:
            return "payment providers: configured by you (no fakes started)"
        return "\n".join(f"fake {name}: {url}  (control API: {url}/__control)" for name, url in self.urls.items())

    def stop(self) -> None:
        for proc in reversed(self.processes):
            services.terminate(proc)
        self.processes.clear()


def configured(provider: str, settings: Mapping[str, str]) -> bool:
    return bool(settings.get(BASE_URL_VARIABLE[provider]) or settings.get(API_KEY_VARIABLE[provider]))


def start_fakes(python: Path, app_port: str, settings: Mapping[str, str], logs: Path) -> ProviderFakes:
    """Start a fake for each provider `settings` (environment + local settings) leaves unconfigured."""
    fakes = ProviderFakes()
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for provider, credentials in LOCAL_CREDENTIALS.items():
            if configured(provider, settings):
                continue
            port = services.free_port()
            log = logs / f"fake-{provider}.log"
            cmd = [str(python), "-m", f"devhost.fakes.{provider}", "--port", str(port)]
            cmd += ["--webhook-url", f"http://127.0.0.1:{app_port}/api/payments/{provider}/webhook"]
            for variable, value in credentials.items():
                if variable in FLAGS:
                    cmd += [FLAGS[variable], value]
            proc = services.spawn(cmd, log, cwd=services.ROOT)
            fakes.processes.append(proc)
            services.wait_until(functools.partial(services.port_open, port), f"fake {provider}", log, proc)
            url = f"http://127.0.0.1:{port}"
            fakes.urls[provider] = url
            fakes.env.update(credentials)
            fakes.env[BASE_URL_VARIABLE[provider]] = url
    except BaseException:
        fakes.stop()
        raise
    return fakes
