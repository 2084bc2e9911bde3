import type { LoggerService } from '@nestjs/common';

/** A Nest logger that keeps every line with its level and context, for tests that assert on what was logged. */
export class RecordingLogger implements LoggerService {
  readonly lines: Array<{ level: string; message: string; context?: string }> = [];
  log = (message: string, context?: string) => void this.lines.push({ level: 'log', message, context });
  error = (message: string, context?: string) => void this.lines.push({ level: 'error', message, context });
  warn = (message: string, context?: string) => void this.lines.push({ level: 'warn', message, context });
  fatal = (message: string, context?: string) => void this.lines.push({ level: 'fatal', message, context });
  debug = () => undefined;
  verbose = () => undefined;
}
