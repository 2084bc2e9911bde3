import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAtExit } from '../../test/kit/exit-cleanup.js';

/** What a bench child process says to its parent over IPC. */
export type ChildMessage<T> = { type: 'ready'; value: T } | { type: 'result'; value: T } | { type: 'error'; message: string };

const benchRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ChildOptions {
  /** Node flags, e.g. --expose-gc. */
  execArgv?: string[];
  /** Gives up (and kills the child) after this long without its first message. */
  timeoutMs?: number;
}

/**
 * A bench process of its own (a Nest app under load, a worker measuring its heap), so its event loop and
 * heap are not shared with the driver. Killed by PID at the driver's exit if still alive.
 */
export class BenchChild<T> {
  private readonly forgetExitTask: () => void;
  private readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    readonly value: T,
  ) {
    this.forgetExitTask = cleanupAtExit(() => this.killNow());
    this.exited = child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', resolve));
  }

  /** Starts `script` (relative to .build/bench) and resolves with the value of its first 'ready' or 'result' message. */
  static async start<T>(script: string, args: readonly string[] = [], options: ChildOptions = {}): Promise<BenchChild<T>> {
    const child = fork(path.join(benchRoot, script), args, { execArgv: options.execArgv ?? [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timeoutMs = options.timeoutMs ?? 60_000;
    try {
      const value = await new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${script} said nothing within ${timeoutMs} ms`)), timeoutMs);
        child.once('message', (message: ChildMessage<T>) => {
          clearTimeout(timer);
          if (message.type === 'error') reject(new Error(`${script}: ${message.message}`));
          else resolve(message.value);
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`${script} exited (${signal ?? code}) before reporting`));
        });
      });
      return new BenchChild(child, value);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** Runs a worker to completion: its one 'result' message. */
  static async run<T>(script: string, args: readonly string[] = [], options: ChildOptions = {}): Promise<T> {
    const worker = await BenchChild.start<T>(script, args, options);
    await worker.stop();
    return worker.value;
  }

  /** Asks the child to finish (a 'stop' message), then SIGKILLs it after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    // With a callback, a child that disconnected meanwhile (a worker that reported and ended) is no error.
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.connected) this.child.send({ type: 'stop' }, () => undefined);
    const timer = setTimeout(() => this.killNow(), graceMs);
    await this.exited;
    clearTimeout(timer);
    this.forgetExitTask();
  }

  private killNow(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Child side: report a value to the parent and wait until it is sent. */
export function tellParent<T>(message: ChildMessage<T>): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) {
      console.log(JSON.stringify(message, null, 2));
      resolve();
      return;
    }
    process.send(message, undefined, undefined, () => resolve());
  });
}

/** Child side: runs `onStop` when the parent asks the child to finish, then disconnects so the process can end. */
export function whenParentStops(onStop: () => Promise<void> | void): void {
  process.on('message', (message: { type?: string }) => {
    if (message?.type !== 'stop') return;
    void Promise.resolve()
      .then(onStop)
      .finally(() => process.disconnect?.());
  });
}
