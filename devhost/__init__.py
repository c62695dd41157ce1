"""devhost: a local Azure Functions host for this app (never deployed).

It emulates the Functions host and the Durable extension; the worker-side code (azure-functions
converters, the Durable SDK, the app) runs unmodified. This package's __init__ imports nothing so
that the stdlib-only bootstrap (`python3 -m devhost.dev`) can run before dependencies exist.
"""
