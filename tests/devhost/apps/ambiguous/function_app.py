"""Loader test app: `bookings/{id}` shadows `bookings/mine` in Azure (first registered wins)."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="bookings/{id}", methods=["GET"])
def get_booking(req: func.HttpRequest) -> str:
    return "by id"


@app.route(route="bookings/mine", methods=["GET", "POST"])
def my_bookings(req: func.HttpRequest) -> str:
    return "mine"
