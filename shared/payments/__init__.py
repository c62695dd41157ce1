"""Payments: provider orders, signed webhooks, refunds and the booking-to-payment orchestration."""
