import type { Contributions } from './contributions.js';
import type { TaskNames } from './task-names.js';
import type { NameRecords, NetworkZone, SrvTarget } from './view.js';

/** One zone's names and SRV records, merged from what each service and container contributes. */
export interface ZoneParts {
  readonly zone: NetworkZone;
  readonly names: Contributions<NameRecords, NameRecords>;
  readonly srv: Contributions<readonly SrvTarget[], readonly SrvTarget[]>;
  /** Names answered from services' tasks in rotation. */
  readonly tasks: TaskNames;
}

/** What an owner contributed, flat as [target, key, target, key, ...]: one array per owner. */
export type Entries = (Retractable | string)[];

/** What an owner's contribution can be taken back from. */
export interface Retractable {
  delete(key: string, owner: string): void;
}

export const noAddresses: readonly string[] = Object.freeze([]);

/** What one owner (a service, a container, a task) contributes, collected before it is applied. */
export class Fragment {
  readonly names = new Map<string, { zone: ZoneParts; name: string; v4: Set<string>; v6: Set<string> }>();
  readonly srv = new Map<string, { zone: ZoneParts; name: string; targets: SrvTarget[] }>();

  /** Declares a name even with no address, so it answers NODATA rather than NXDOMAIN. */
  name(zone: ZoneParts, name: string, address?: string): void {
    const key = name.toLowerCase();
    const k = `${zone.zone.id}\u0000${key}`;
    let rec = this.names.get(k);
    if (!rec) {
      rec = { zone, name: key, v4: new Set(), v6: new Set() };
      this.names.set(k, rec);
    }
    if (address) (address.includes(':') ? rec.v6 : rec.v4).add(address);
  }

  addSrv(zone: ZoneParts, name: string, t: SrvTarget): void {
    const key = name.toLowerCase();
    const k = `${zone.zone.id}\u0000${key}`;
    let rec = this.srv.get(k);
    if (!rec) {
      rec = { zone, name: key, targets: [] };
      this.srv.set(k, rec);
    }
    rec.targets.push(t);
  }
}

export function mergeNames(values: NameRecords[]): NameRecords {
  if (values.length === 1) return values[0] as NameRecords;
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const v of values) {
    for (const a of v.v4) v4.add(a);
    for (const a of v.v6) v6.add(a);
  }
  return { v4: [...v4], v6: [...v6] };
}

export function mergeSrv(values: (readonly SrvTarget[])[]): readonly SrvTarget[] {
  return values.length === 1 ? (values[0] as readonly SrvTarget[]) : values.flat();
}
