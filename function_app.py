"""Composition root: builds the Functions app and registers one blueprint per feature."""

import azure.functions as func

from shared.accounts.triggers import bp as accounts
from shared.bookings.triggers import bp as bookings
from shared.health.triggers import bp as health
from shared.mentors.triggers import bp as mentors
from shared.payments.orchestration import bp as payment_flow
from shared.payments.triggers import bp as payments
from shared.reviews.triggers import bp as reviews
from shared.stats.triggers import bp as stats
from shared.uiconfig.triggers import bp as ui_config

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (health, ui_config, accounts, mentors, bookings, reviews, stats, payments, payment_flow):
    app.register_functions(blueprint)
