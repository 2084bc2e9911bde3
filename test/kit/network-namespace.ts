import { execFileSync } from 'node:child_process';
import { cleanupAtExit } from './exit-cleanup.js';
import { isAlive, killNow, run, waitUntilDead } from './process.util.js';

let created = 0;
let probe: Promise<string | undefined> | undefined;

/**
 * A Linux network namespace joined to the host by a veth pair (host 10.231.X.1/30, namespace
 * 10.231.X.2/30), for faults the kernel injects: iptables DROP gives a silent partition with no FIN or
 * RST, which a proxy cannot fake (it still ACKs). Needs root, iproute2 and iptables.
 */
export class NetworkNamespace {
  private destroyed = false;
  private readonly forgetExitTask: () => void;

  private constructor(
    readonly name: string,
    /** The host's end of the veth; servers in the namespace see clients coming from here. */
    readonly hostAddress: string,
    /** Where the host reaches servers running inside. */
    readonly nsAddress: string,
  ) {
    this.forgetExitTask = cleanupAtExit(() => NetworkNamespace.deleteNow(name));
  }

  static async isSupported(): Promise<boolean> {
    return (await NetworkNamespace.unsupportedReason()) === undefined;
  }

  /** Why namespaces cannot be used here, or undefined when they can; probed once per process. */
  static unsupportedReason(): Promise<string | undefined> {
    probe ??= (async () => {
      if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
      const name = `ch-probe-${process.pid}`;
      try {
        await run('ip', ['netns', 'add', name]);
      } catch (error) {
        return `cannot create a network namespace (root needed): ${(error as Error).message}`;
      }
      try {
        await run('ip', ['netns', 'exec', name, 'iptables', '-S']);
        await run('ip', ['-n', name, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1']);
        return undefined;
      } catch (error) {
        return `iptables or veth unusable (run scripts/install-servers.sh): ${(error as Error).message}`;
      } finally {
        await run('ip', ['netns', 'del', name]).catch(() => undefined);
      }
    })();
    return probe;
  }

  static async create(name = `ch-${process.pid}-${created++}`): Promise<NetworkNamespace> {
    await run('ip', ['netns', 'add', name]);
    try {
      await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
      const subnet = await NetworkNamespace.claimSubnet(name);
      const hostLink = `vch-${subnet}`;
      const inner = `vch-${subnet}-ns`;
      await run('ip', ['addr', 'add', `10.231.${subnet}.1/30`, 'dev', hostLink]);
      await run('ip', ['link', 'set', hostLink, 'up']);
      await run('ip', ['-n', name, 'addr', 'add', `10.231.${subnet}.2/30`, 'dev', inner]);
      await run('ip', ['-n', name, 'link', 'set', inner, 'up']);
      // The /30 on each end gives both sides a connected route; no default route, so nothing inside
      // can reach past the host.
      return new NetworkNamespace(name, `10.231.${subnet}.1`, `10.231.${subnet}.2`);
    } catch (error) {
      NetworkNamespace.deleteNow(name);
      throw error;
    }
  }

  /**
   * Picks X for 10.231.X.0/30 by creating the host veth named after it: link names are unique, so
   * a name already taken (by a parallel test process, say) means the subnet is taken, with no race.
   */
  private static async claimSubnet(name: string): Promise<number> {
    const start = (process.pid * 31 + created) % 256;
    for (let i = 0; i < 256; i++) {
      const subnet = (start + i) % 256;
      try {
        await run('ip', ['link', 'add', `vch-${subnet}`, 'type', 'veth', 'peer', 'name', `vch-${subnet}-ns`, 'netns', name]);
        return subnet;
      } catch (error) {
        if (!/exists/i.test((error as Error).message)) throw error;
      }
    }
    throw new Error('no free 10.231.X.0/30 subnet: are old namespaces left over? see `ip netns list`');
  }

  /** Runs a command inside the namespace and returns its stdout. */
  exec(command: string, args: readonly string[] = []): Promise<string> {
    return run('ip', ['netns', 'exec', this.name, command, ...args]);
  }

  /**
   * Silently drops every TCP segment to and from `port` inside the namespace: no FIN, no RST, both
   * ends stay ESTABLISHED and retransmit. heal() in time and the connections live on.
   */
  async blackhole(port: number): Promise<void> {
    for (const chain of ['INPUT', 'OUTPUT']) {
      for (const direction of ['--dport', '--sport']) {
        await this.iptables('-A', chain, '-p', 'tcp', direction, String(port), '-j', 'DROP');
      }
    }
  }

  /**
   * Silently drops one connection alone: every TCP segment from and to the client's local `clientPort` (as
   * the server inside sees it). Other connections to the same server, new ones included, pass.
   */
  async blackholeClient(clientPort: number): Promise<void> {
    await this.iptables('-A', 'INPUT', '-p', 'tcp', '--sport', String(clientPort), '-j', 'DROP');
    await this.iptables('-A', 'OUTPUT', '-p', 'tcp', '--dport', String(clientPort), '-j', 'DROP');
  }

  /**
   * Drops each TCP segment to and from `port` with the given probability (iptables statistic): TCP
   * retransmits, so calls get slower and now and then very slow, but nothing is lost for good.
   */
  async loss(port: number, probability: number): Promise<void> {
    for (const chain of ['INPUT', 'OUTPUT']) {
      for (const direction of ['--dport', '--sport']) {
        const random = ['-m', 'statistic', '--mode', 'random', '--probability', String(probability)];
        await this.iptables('-A', chain, '-p', 'tcp', direction, String(port), ...random, '-j', 'DROP');
      }
    }
  }

  /** Answers every segment arriving for `port` with an RST: clients see ECONNRESET on their next send. */
  async reset(port: number): Promise<void> {
    await this.iptables('-I', 'INPUT', '-p', 'tcp', '--dport', String(port), '-j', 'REJECT', '--reject-with', 'tcp-reset');
  }

  /** Removes every rule blackhole(), blackholeClient(), loss() and reset() added (the namespace holds no others). */
  async heal(): Promise<void> {
    await this.iptables('-F');
  }

  /** Kills whatever still runs inside and deletes the namespace, which also removes the veth pair. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.forgetExitTask();
    const pids = await this.pids();
    killNow(pids);
    await waitUntilDead(pids);
    await run('ip', ['netns', 'del', this.name]).catch(() => undefined);
  }

  private async iptables(...args: string[]): Promise<void> {
    await this.exec('iptables', ['-w', ...args]);
  }

  private async pids(): Promise<number[]> {
    const out = await run('ip', ['netns', 'pids', this.name]).catch(() => '');
    return out.split('\n').filter(Boolean).map(Number).filter(isAlive);
  }

  /** Synchronous, for process exit. */
  private static deleteNow(name: string): void {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      killNow(pids.split('\n').filter(Boolean).map(Number));
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
  }
}
