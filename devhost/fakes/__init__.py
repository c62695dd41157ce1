"""Fake payment providers (Razorpay, Stripe): real HTTP servers for the real SDKs, local only.

See README.md. Submodules are not imported here, so `python -m devhost.fakes.<provider>` runs cleanly.
"""
