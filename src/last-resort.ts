import { logger } from './log.js';

const log = logger('meshd');
const counts = { exception: 0, rejection: 0 };

/**
 * The last line of defence: an error that escaped every handler on a data path is logged and
 * counted (`meshd_process_uncaught_errors_total`) instead of ending the process, so one bad
 * packet or peer cannot take a node's DNS and mesh down with it. Each such error is a bug to fix;
 * the metric and the log line are how an operator hears of it.
 */
export function installLastResort(): void {
  process.on('uncaughtException', (err) => {
    counts.exception++;
    log.error('uncaught error; meshd keeps running', { error: err.message, stack: err.stack });
  });
  process.on('unhandledRejection', (reason) => {
    counts.rejection++;
    log.error('unhandled rejection; meshd keeps running', {
      error: reason instanceof Error ? reason.message : String(reason),
    });
  });
}

/** Errors caught by the last-resort handlers so far, by kind. */
export function uncaughtCounts(): Readonly<Record<'exception' | 'rejection', number>> {
  return counts;
}
