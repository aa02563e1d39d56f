import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths redacted from every log line. pino's `*` matches exactly one level, so credentials are also kept out of
 * log objects by construction (config is logged through `describeConfig`, never whole).
 */
const REDACT_PATHS = [
  'password',
  'token',
  'apiKey',
  'authorization',
  'Authorization',
  'headers.authorization',
  'headers.Authorization',
  'req.headers.authorization',
  '*.password',
  '*.token',
  '*.apiKey',
  '*.authorization',
  '*.Authorization',
  '*.access_token',
  '*.refresh_token',
  'config.anchore.password',
  'config.anchore.apiKey',
];

interface LoggerConfig {
  level: string;
  pretty: boolean;
}

/** JSON to stdout (or `destination`, for tests that capture the log); pretty output only when asked for. */
export function createLogger(cfg: LoggerConfig, destination?: DestinationStream): Logger {
  const opts: LoggerOptions = {
    level: cfg.level,
    base: { app: 'anchore-operator' },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (destination) return pino(opts, destination);
  if (cfg.pretty) {
    return pino({ ...opts, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino(opts);
}

let reconcileSeq = 0;

/** A short id unique in this process, to tie together the log lines of one reconcile. */
export function nextReconcileId(): string {
  reconcileSeq = (reconcileSeq + 1) % Number.MAX_SAFE_INTEGER;
  return reconcileSeq.toString(36);
}
