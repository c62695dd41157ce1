"""Payment statuses only move forward; a late or reordered event can never move one back.

`PAYMENT_MOVES[to]` lists the statuses a payment may move to `to` from. `failed -> succeeded` is
legal: Razorpay may authorise a payment days after it first failed.
"""

from __future__ import annotations

PAYMENT_MOVES: dict[str, tuple[str, ...]] = {
    "pending": ("created",),
    "succeeded": ("created", "pending", "failed"),
    "failed": ("created", "pending"),
    "refund_pending": ("succeeded",),
    "refunded": ("succeeded", "refund_pending"),
    "partially_refunded": ("succeeded", "refund_pending"),
}

# Statuses in which the customer's money is (or was) with us.
PAID = frozenset({"succeeded", "refund_pending", "refunded", "partially_refunded"})

REFUND_MOVES: dict[str, tuple[str, ...]] = {
    "pending": ("requested",),
    "succeeded": ("requested", "pending"),
    "failed": ("requested", "pending"),
}
