"""`dialer demo` and the process harness it runs on (also used by the tests and benchmarks):
not imported by the worker, the webhook or the producer API."""
