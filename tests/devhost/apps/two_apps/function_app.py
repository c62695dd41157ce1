"""Loader test app: two FunctionRegister instances, which the worker refuses."""

import azure.functions as func

app = func.FunctionApp()
other = func.FunctionApp()


@app.route(route="ping")
def ping(req: func.HttpRequest) -> str:
    return "pong"
