"""Loader test app: counts get_functions() calls and mixes trigger kinds."""

import azure.durable_functions as df
import azure.functions as func

GET_FUNCTIONS_CALLS = []


class CountingApp(df.DFApp):
    def get_functions(self):  # type: ignore[no-untyped-def]
        GET_FUNCTIONS_CALLS.append(1)
        return super().get_functions()


app = CountingApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="bookings/{booking_id:int}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def get_booking(req: func.HttpRequest, client: str) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.route(route="bookings/mine", methods=["GET"])
def my_bookings(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("mine")


@app.function_name("NightlyCleanup")
@app.timer_trigger(schedule="0 0 3 * * *", arg_name="timer")
def nightly(timer: func.TimerRequest) -> None:
    pass


@app.orchestration_trigger(context_name="context")
def booking_flow(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    result = yield context.call_activity("charge", 1)
    return result


@app.activity_trigger(input_name="amount")
def charge(amount: int) -> int:
    return amount
