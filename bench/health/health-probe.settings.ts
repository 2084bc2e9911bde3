/** Monitor settings of the /health bench app; here, not in the app's entry file, so the driver can import them. */
export const HEALTH_APP_HEARTBEAT = { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: 1_000 } as const;
export const HEALTH_APP_RECONNECT = { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity } as const;
