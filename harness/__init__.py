"""Running the dialer for tests and benchmarks: throwaway Redis and PostgreSQL servers, the
whole stack as real processes, waiting with deadlines, fault injection."""
