/**
 * Last-resort cleanup for servers and namespaces a test process started but did not stop (a failed
 * `before`, an interrupted run). The tasks are synchronous because 'exit' allows nothing else.
 */
const tasks = new Set<() => void>();
let installed = false;

/** Registers a synchronous task to run when the process exits or is interrupted; returns its removal. */
export function cleanupAtExit(task: () => void): () => void {
  if (!installed) install();
  tasks.add(task);
  return () => tasks.delete(task);
}

function runAll(): void {
  for (const task of tasks) {
    try {
      task();
    } catch {
      // Best effort: one failing task must not keep the others from running.
    }
  }
  tasks.clear();
}

function install(): void {
  installed = true;
  process.once('exit', runAll);
  // An unhandled signal ends the process without 'exit': clean up, then re-raise so the exit status stays
  // honest. When someone else handles the signal (Nest's shutdown hooks), they decide, and 'exit' covers us.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      process.off(signal, onSignal);
      runAll();
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
