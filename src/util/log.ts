/**
 * A tiny structured logger. Lines are JSON so operators can filter them (or plain text for a
 * person at a terminal: createEntryLogger + operator-output.ts); callers pass only what is safe
 * to log (never key material, never payloads).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(
  write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  minLevel: LogLevel = 'info',
): Logger {
  const emit = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < ORDER[minLevel]) return;
    write(JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields }));
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/**
 * A logger that hands each entry to `sink` as an object (for the operator's plain view,
 * src/util/operator-output.ts) instead of a JSON line.
 */
export function createEntryLogger(
  sink: (entry: { t: number; level: LogLevel; msg: string; fields?: Record<string, unknown> }) => void,
  minLevel: LogLevel = 'info',
): Logger {
  const emit = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < ORDER[minLevel]) return;
    sink({ t: Date.now(), level, msg, ...(fields ? { fields } : {}) });
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
