import type { Snapshot } from '../state/snapshot.js';
import type { NameRecords, SrvTarget } from './view.js';

const noAddresses: readonly string[] = Object.freeze([]);

/** What a service's tasks answer under in one zone. */
export interface TaskNameSpec {
  /** Names listing each task's address: `tasks.NAME`, and `NAME` too in dnsrr mode. */
  readonly names: readonly string[];
  /** SRV names listing each task (dnsrr mode), each once, with the port the tasks serve. */
  readonly srv: readonly { readonly name: string; readonly port: number }[];
  /**
   * Names of `names` that also list tasks not ready yet (starting, or failing their probe) on a
   * live node: `tasks.NAME` of a service that publishes them, for software that must find its
   * peers before it is healthy (Kubernetes' publishNotReadyAddresses, moby#36737).
   */
  readonly notReady?: readonly string[];
}

/**
 * The names one zone answers from the tasks of services. Nothing is stored per task: the records
 * are made from the snapshot when a name is first asked for, and kept until a change touches one
 * of its services. A burst of changes to a service of 10,000 tasks then costs one rebuild at
 * the next query rather than one per change, and a task costs no memory here.
 */
export class TaskNames {
  /** Name -> the service whose tasks it lists, or the services when several share it (rare). */
  private readonly names = new Map<string, string | Set<string>>();
  /** SRV name -> service -> the port its tasks serve under that name. */
  private readonly srv = new Map<string, Map<string, number>>();
  private readonly specs = new Map<string, TaskNameSpec>();
  private readonly nameCache = new Map<string, NameRecords>();
  private readonly srvCache = new Map<string, SrvTarget[]>();

  constructor(
    private readonly network: string,
    /** A task's SRV target name. */
    private readonly fqdn: (name: string) => string,
    /** Told when a name gains its first service or loses its last (for NXDOMAIN). */
    private readonly presence: (name: string, present: boolean) => void,
  ) {}

  /** Sets what service `id`'s tasks answer under, replacing what it had. */
  setService(id: string, spec: TaskNameSpec): void {
    this.dropService(id);
    this.specs.set(id, spec);
    for (const name of spec.names) {
      const had = this.names.get(name);
      if (had === undefined) {
        this.names.set(name, id);
        this.presence(name, true);
      } else if (typeof had === 'string') this.names.set(name, new Set([had, id]));
      else had.add(id);
    }
    for (const { name, port } of spec.srv) {
      let services = this.srv.get(name);
      if (!services) {
        services = new Map();
        this.srv.set(name, services);
        this.presence(name, true);
      }
      services.set(id, port);
    }
  }

  dropService(id: string): void {
    const spec = this.specs.get(id);
    if (!spec) return;
    this.invalidate(id);
    this.specs.delete(id);
    for (const name of spec.names) {
      const had = this.names.get(name);
      if (typeof had === 'object') {
        had.delete(id);
        if (had.size === 1) this.names.set(name, had.values().next().value as string);
      } else if (had === id) {
        this.names.delete(name);
        this.presence(name, false);
      }
    }
    for (const { name } of spec.srv) {
      const services = this.srv.get(name);
      if (!services?.delete(id) || services.size > 0) continue;
      this.srv.delete(name);
      this.presence(name, false);
    }
  }

  /** The tasks of service `id` changed: its names are made again when next asked for. */
  invalidate(id: string): void {
    const spec = this.specs.get(id);
    if (!spec) return;
    for (const name of spec.names) this.nameCache.delete(name);
    for (const { name } of spec.srv) this.srvCache.delete(name);
  }

  /** The addresses of the tasks in rotation that `name` lists, or undefined if it lists none. */
  records(snap: Snapshot, name: string): NameRecords | undefined {
    const had = this.names.get(name);
    if (had === undefined) return undefined;
    const known = this.nameCache.get(name);
    if (known) return known;
    const v4: string[] = [];
    const v6: string[] = [];
    for (const id of typeof had === 'string' ? [had] : had) {
      const all = this.specs.get(id)?.notReady?.includes(name) === true;
      for (const t of snap.tasksOf(id)) {
        if (!snap.up.has(t.id) && !(all && snap.state.heartbeats.has(t.node))) continue;
        for (const a of t.addresses)
          if (a.network === this.network) (a.address.includes(':') ? v6 : v4).push(a.address);
      }
    }
    const rec = { v4: v4.length > 0 ? v4 : noAddresses, v6: v6.length > 0 ? v6 : noAddresses };
    this.nameCache.set(name, rec);
    return rec;
  }

  hasSrv(name: string): boolean {
    return this.srv.has(name);
  }

  /** One SRV target per task in rotation and port, or undefined if `name` is not a task SRV name. */
  srvTargets(snap: Snapshot, name: string): readonly SrvTarget[] | undefined {
    const services = this.srv.get(name);
    if (!services) return undefined;
    const known = this.srvCache.get(name);
    if (known) return known;
    const targets: SrvTarget[] = [];
    for (const [id, port] of services)
      for (const t of snap.tasksOf(id)) {
        if (!snap.up.has(t.id)) continue;
        const address = t.addresses.find((a) => a.network === this.network)?.address;
        if (address) targets.push({ target: this.fqdn(t.name), port, address });
      }
    this.srvCache.set(name, targets);
    return targets;
  }
}
