"""Loader test app: a queue trigger, which devhost refuses."""

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
def on_job(msg: func.QueueMessage) -> None:
    pass
