"""devhost's Durable extension: DTFx-faithful replay, durable storage and the Durable HTTP API.

- protocol.py: history events, context JSON, OrchestratorState (the SDK's wire format)
- replayer.py: the extension shim + DTFx executor (ids, retries, timers, events, non-determinism)
- store.py / postgres_store.py: the Store protocol, MemoryStore and PostgresStore (`durable_local`)
- engine.py: instances, episodes, activity workers, client operations
- functions.py: calling orchestrator/activity functions (Invoker or direct)
- api.py: `durable_routes(engine)` and `client_binding_json(engine, base_url)`
- harness.py: `DurableHarness` for in-process orchestration tests with virtual time
"""
