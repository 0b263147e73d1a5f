// Structured logging: one JSON line per event, each with an event code (`evt`) and ids.
// Never pass message content (subject, body, file names, matched text, addresses in bodies) to a logger.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'phi-gateway'): Logger {
  // Lines are written to stdout without blocking the event loop (a busy or slow reader of the pipe must
  // not stall SMTP), gathered into writes of 4 KB or every 100 ms, whichever comes first; pino flushes
  // what is buffered when the process exits.
  const destination =
    level === 'silent'
      ? undefined
      : pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100 });
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors are logged by code and name only: library messages may quote the input they choked on.
      serializers: {
        err: (err: unknown) => {
          if (!err || typeof err !== 'object') return { type: typeof err };
          const e = err as { name?: unknown; code?: unknown; responseCode?: unknown };
          return { type: e.name, code: e.code, responseCode: e.responseCode };
        },
      },
    },
    destination,
  );
}
