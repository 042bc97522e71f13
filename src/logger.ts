/** A small leveled logger to stderr; the only place the server writes log lines. */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string, err?: unknown): void;
}

const LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LEVELS)[number];

export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Logger {
  const min = LEVELS.indexOf(level);
  const at = (lvl: LogLevel) => (msg: string, err?: unknown) => {
    if (LEVELS.indexOf(lvl) >= min) {
      const detail =
        err instanceof Error ? `: ${err.stack ?? err.message}` : err === undefined ? "" : `: ${String(err)}`;
      write(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${msg}${detail}`);
    }
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
