import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from './wait.js';

export interface RunningScript {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  readonly out: string;
  /** Everything written to stderr so far. */
  readonly err: string;
  /** SIGINT (as Ctrl-C), then waits for the exit; nothing if it has ended. */
  stop(): Promise<void>;
}

/**
 * A Node script (`npm start`'s demo, say) started with `args` and `env`, once its stdout shows `ready`;
 * a script that exits first fails here with its stderr.
 */
export async function startScript(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: string,
  timeout = 60_000,
): Promise<RunningScript> {
  const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const running: RunningScript = {
    child,
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    },
  };
  await waitFor(() => out.includes(ready) || child.exitCode !== null, {
    what: `${script} to start`,
    timeout,
  });
  if (child.exitCode !== null) throw new Error(`${script} exited: ${err}`);
  return running;
}
